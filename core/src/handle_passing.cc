#include "mproc/detail/handle_passing.h"

#include <unistd.h>

#include <string>
#include <utility>

#include "mproc/errors.h"

namespace mproc::detail {
namespace {

thread_local HandleExport* current_export = nullptr;
thread_local HandleImport* current_import = nullptr;

}  // namespace

HandleExport::HandleExport() : outer_(std::exchange(current_export, this)) {}
HandleExport::~HandleExport() { current_export = outer_; }

HandleImport::HandleImport(std::vector<int> handles)
    : handles_(std::move(handles)), outer_(std::exchange(current_import, this)) {}

HandleImport::~HandleImport() {
  current_import = outer_;
  for (int fd : handles_)
    if (fd >= 0) ::close(fd);
}

std::uint32_t export_handle(int fd) {
  if (current_export == nullptr) {
    throw SerializationError(
        "a Connection can only be serialized as an argument of a Process started by spawn or "
        "forkserver (its descriptor travels with the start); to hand one to a running process, "
        "use send_connection");
  }
  current_export->handles_.push_back(fd);
  return static_cast<std::uint32_t>(current_export->handles_.size() - 1);
}

int import_handle(std::uint32_t index) {
  if (current_import == nullptr)
    throw SerializationError("a Connection arrived outside of a process start (no descriptor)");
  auto& handles = current_import->handles_;
  if (index >= handles.size() || handles[index] < 0) {
    throw SerializationError("a Connection refers to descriptor #" + std::to_string(index) +
                             ", which did not arrive (or was taken already)");
  }
  return std::exchange(handles[index], -1);
}

}  // namespace mproc::detail
