// mproc/detail/handle_passing.h (INTERNAL)
//
// Descriptors among the arguments of a Process started by spawn or by the fork server. A
// descriptor has no name another process could open, so while the target is encoded each one is
// collected here and sent alongside (SCM_RIGHTS); the child takes them back, by index, while it
// decodes. Outside of such a start there is nowhere to send a descriptor to, and encoding one is
// a SerializationError.
#pragma once

#include <cstdint>
#include <vector>

namespace mproc::detail {

// While alive, descriptors encoded on this thread are collected (not duplicated: the caller keeps
// them open until they are sent).
class HandleExport {
 public:
  HandleExport();
  ~HandleExport();
  HandleExport(const HandleExport&) = delete;
  HandleExport& operator=(const HandleExport&) = delete;
  [[nodiscard]] const std::vector<int>& handles() const noexcept { return handles_; }

 private:
  friend std::uint32_t export_handle(int fd);
  std::vector<int> handles_;
  HandleExport* outer_;
};

// While alive, decoding on this thread takes its descriptors from `handles`, which it owns: those
// not taken are closed at the end.
class HandleImport {
 public:
  explicit HandleImport(std::vector<int> handles);
  ~HandleImport();
  HandleImport(const HandleImport&) = delete;
  HandleImport& operator=(const HandleImport&) = delete;

 private:
  friend int import_handle(std::uint32_t index);
  std::vector<int> handles_;
  HandleImport* outer_;
};

// The index `fd` travels as. Throws SerializationError when no HandleExport is active.
[[nodiscard]] std::uint32_t export_handle(int fd);
// The descriptor sent as `index`, now owned by the caller. Throws SerializationError when no
// HandleImport is active, or the index is out of range or already taken.
[[nodiscard]] int import_handle(std::uint32_t index);

}  // namespace mproc::detail
