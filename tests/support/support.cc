#include "support.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <system_error>

extern char** environ;  // NOLINT(readability-redundant-declaration): not in <unistd.h>

namespace mproc::test {
namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

}  // namespace

pid_t fork_child(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child threw: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "child threw a non-std exception\n");
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

ChildExit wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return {decode_status(status), false};
    if (r < 0 && errno != EINTR) return {-1000, false};
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return {decode_status(status), true};
    }
    ::usleep(1000);  // test support only: the library itself never polls
  }
}

ChildExit fork_and_wait(const std::function<int()>& body, std::chrono::milliseconds timeout) {
  return wait_child(fork_child(body), timeout);
}

ChildOutput fork_capturing_stderr(const std::function<int()>& body,
                                  std::chrono::milliseconds timeout) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  ChildOutput output;
  output.exit = fork_and_wait(
      [&] {
        ::dup2(fds[1], 2);
        ::close(fds[0]);
        ::close(fds[1]);
        return body();
      },
      timeout);
  ::close(fds[1]);
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;)
    output.err.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  return output;
}

ProgramOutput run_program(const std::string& path, const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout) {
  return run_program_in(path, args, timeout, {});
}

ProgramOutput run_program_with_method(const std::string& path, const std::string& method,
                                      std::chrono::milliseconds timeout) {
  return run_program_in(path, {}, timeout, {"MPROC_START_METHOD=" + method});
}

ProgramOutput run_program_in(const std::string& path, const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout,
                             const std::vector<std::string>& extra_environment) {
  // The environment is built before the fork: the child may only exec.
  std::vector<std::string> environment(extra_environment);
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    bool overridden = false;
    for (const auto& extra : extra_environment)
      overridden = overridden || v.substr(0, v.find('=')) == extra.substr(0, extra.find('='));
    if (!overridden) environment.emplace_back(v);
  }
  std::vector<char*> envp;
  for (auto& v : environment) envp.push_back(v.data());
  envp.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    std::vector<char*> argv{const_cast<char*>(path.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execve(path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProgramOutput result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  int open_fds = 2;
  char buffer[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(got));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = decode_status(status);
  return result;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> leaked_segments() {
  std::vector<std::string> leaks;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return leaks;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (!name.starts_with("mproc-")) continue;
    pid_t pid = 0;
    std::from_chars(name.data() + 6, name.data() + name.size(), pid);
    if (pid == ::getpid() || (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH))
      leaks.emplace_back(name);
  }
  ::closedir(dir);
  return leaks;
}

double seconds_to_run(const std::function<void()>& fn) {
  auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace mproc::test
