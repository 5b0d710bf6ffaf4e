// A function's name from its address, for error messages.
#pragma once

#include <cstdint>
#include <string>

namespace mproc::detail {

// The qualified name of the function at `address` as one would write it at namespace scope
// ("ns::square"), from the dynamic symbol table or the file's full symbol table; "" when neither
// has it (a stripped binary, or an address that is not the start of a function).
std::string function_name(std::uintptr_t address);

}  // namespace mproc::detail
