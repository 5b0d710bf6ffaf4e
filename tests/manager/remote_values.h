// What CPython's _TestRemoteManager.test_remote uses, shared by the remote-manager tests.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "mproc/object.h"

namespace mproc::test {

// Python's os.urandom(32).
inline std::string random_key() {
  std::string key(32, '\0');
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::read(fd, key.data(), key.size()), 32);
  ::close(fd);
  return key;
}

// The values CPython's test puts: str, None, bool, float, non-ASCII str (two scripts), bytes.
inline Object::List cpython_remote_values() {
  return {"hello world",
          None,
          true,
          2.25,
          "hall\u00e5 v\u00e4rld",
          "\u043f\u0440\u0438\u0432\u0456\u0442 \u0441\u0432\u0456\u0442",
          Object::bytes("hall\xe5 v\xe4rld")};
}

}  // namespace mproc::test
