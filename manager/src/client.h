// The client side of the manager's protocol: each thread of each process keeps one connection
// per server address (as Python's BaseProxy keeps a thread-local connection per address).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mproc/manager_serializer.h"

namespace mproc::detail {

// Sends `request` to the server at `address` and returns the response's payload; rethrows the
// exception the server sent back. Throws EOFError when the server went away (the connection is
// dropped, so the next request connects afresh), std::system_error when nothing listens.
// A new connection announces `serializer` (protocol.h's kHello): a server that uses another one
// makes this throw its SerializationError.
std::string manager_request(const std::string& address, const std::optional<std::string>& authkey,
                            Serializer serializer, std::string_view request);

}  // namespace mproc::detail
