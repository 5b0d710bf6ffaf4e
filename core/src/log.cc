#include "mproc/log.h"

#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace mproc {
namespace {

std::mutex& name_mutex() {
  static std::mutex m;
  return m;
}

std::string& process_name() {
  static std::string name = "MainProcess";
  return name;
}

// `%N` in the pattern: the mproc process name.
class ProcessNameFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::scoped_lock lock(name_mutex());
    const std::string& name = process_name();
    dest.append(name.data(), name.data() + name.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ProcessNameFlag>();
  }
};

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger =
      std::make_shared<spdlog::logger>("mproc", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ProcessNameFlag>('N').set_pattern(
      "[%Y-%m-%d %H:%M:%S.%e] [%P/%N] [%n] [%l] %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::warn);
  logger->flush_on(spdlog::level::debug);
  return logger;
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
  std::scoped_lock lock(name_mutex());
  process_name() = std::move(name);
}

}  // namespace mproc
