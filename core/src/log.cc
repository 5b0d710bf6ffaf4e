#include "mproc/log.h"

#include <pthread.h>

#include <cstdio>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>

namespace mproc {
namespace {

std::mutex name_mutex;

std::string& process_name() {
  static std::string name = "MainProcess";
  return name;
}

// `%N` in the pattern: the mproc process name.
class ProcessNameFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::scoped_lock lock(name_mutex);
    const std::string& name = process_name();
    dest.append(name.data(), name.data() + name.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ProcessNameFlag>();
  }
};

// stderr, as spdlog's stderr_sink_mt writes it, but with a lock that the fork handlers below can
// hold across fork(): a child forked while another thread wrote a line would otherwise inherit
// the lock held by a thread it does not have, and hang at its own first line.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void lock_for_fork() { mutex_.lock(); }
  void unlock_after_fork() { mutex_.unlock(); }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    spdlog::memory_buf_t line;
    formatter_->format(message, line);
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

// Never destroyed: a thread may log, or fork, while the program's statics are being destroyed.
StderrSink& stderr_sink() {
  static auto* const sink = new StderrSink;
  return *sink;
}

std::shared_ptr<spdlog::logger> make_logger() {
  // The aliasing constructor shares ownership with nothing: the sink lives on (see above).
  auto logger = std::make_shared<spdlog::logger>(
      "mproc", std::shared_ptr<StderrSink>(std::shared_ptr<StderrSink>(), &stderr_sink()));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ProcessNameFlag>('N').set_pattern(
      "[%Y-%m-%d %H:%M:%S.%e] [%P/%N] [%n] [%l] %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::warn);
  logger->flush_on(spdlog::level::debug);
  return logger;
}

// In the order a line takes them: the sink's lock, then (in ProcessNameFlag) the name's.
void lock_for_fork() {
  stderr_sink().lock_for_fork();
  name_mutex.lock();
}
void unlock_after_fork() {
  name_mutex.unlock();
  stderr_sink().unlock_after_fork();
}

}  // namespace

std::shared_ptr<spdlog::logger> get_logger() {
  // Not registered in spdlog's global registry: a user's spdlog::drop_all() must not take it.
  static const std::shared_ptr<spdlog::logger> logger = make_logger();
  return logger;
}

std::shared_ptr<spdlog::logger> log_to_stderr(spdlog::level::level_enum level) {
  auto logger = get_logger();
  logger->set_level(level);
  return logger;
}

void detail::set_log_process_name(std::string name) {
  std::scoped_lock lock(name_mutex);
  process_name() = std::move(name);
}

namespace {

// Both done when the library loads, while the process has one thread: a function-local static
// that one thread initialised while another forked would leave the child waiting on its guard.
bool make_statics() {
  (void)get_logger();
  (void)process_name();
  return true;
}
const bool statics_made = make_statics();
const int fork_handlers_registered =
    ::pthread_atfork(&lock_for_fork, &unlock_after_fork, &unlock_after_fork);

}  // namespace
}  // namespace mproc
