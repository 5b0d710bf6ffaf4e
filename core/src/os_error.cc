#include "os_error.h"

#include <string>
#include <system_error>

#include "mproc/log.h"

namespace mproc::detail {

void throw_errno(int error, std::string_view what) {
  throw std::system_error(error, std::generic_category(), "cannot " + std::string(what));
}

void throw_errno(std::string_view what) { throw_errno(errno, what); }

void report_error(std::string_view what) noexcept {
  try {
    get_logger()->error("{}", what);
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing is left to report to
  }
}

}  // namespace mproc::detail
