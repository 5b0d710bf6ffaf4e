// Readable C++ type names for error messages and captured exceptions.
#pragma once

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace mproc::detail {

// The demangled form of a mangled name (typeid(...).name(), a symbol); the input when it is not
// a mangled name.
inline std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> readable(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && readable ? std::string(readable.get()) : std::string(mangled);
}

}  // namespace mproc::detail
