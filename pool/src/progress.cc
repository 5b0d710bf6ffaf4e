#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "mproc/async_result.h"

#include "os_error.h"

namespace mproc::detail {

std::shared_ptr<ProgressBar> ProgressBar::for_fd(int fd, std::size_t total) {
  if (::isatty(fd) != 1) return nullptr;
  return std::make_shared<ProgressBar>(fd, total);
}

ProgressBar::ProgressBar(int fd, std::size_t total)
    : fd_(fd), total_(total), start_(std::chrono::steady_clock::now()) {}

void ProgressBar::advance(std::size_t items) {
  std::scoped_lock lock(mutex_);
  done_ += items;
  auto now = std::chrono::steady_clock::now();
  bool finished = total_ != 0 && done_ >= total_;
  // At most ten redraws a second: a terminal is slow, a map may complete thousands of chunks.
  if (!finished && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::string line =
      "\r" + format(done_, total_, std::chrono::duration<double>(now - start_).count());
  if (finished) line += "\n";
  std::size_t written = 0;
  while (written < line.size()) {
    ssize_t n =
        retry_on_eintr([&] { return ::write(fd_, line.data() + written, line.size() - written); });
    if (n <= 0) return;  // a progress bar is not worth failing a map for
    written += static_cast<std::size_t>(n);
  }
}

std::string ProgressBar::format(std::size_t done, std::size_t total, double elapsed_seconds) {
  constexpr int kWidth = 30;
  double rate = elapsed_seconds > 0 ? static_cast<double>(done) / elapsed_seconds : 0.0;
  char text[160];
  if (total == 0) {
    std::snprintf(text, sizeof text, "%zu done | %.0f/s | %.1fs", done, rate, elapsed_seconds);
    return text;
  }
  std::size_t shown = done > total ? total : done;
  int filled = static_cast<int>(static_cast<double>(shown) * kWidth / static_cast<double>(total));
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  double eta = rate > 0 ? static_cast<double>(total - shown) / rate : 0.0;
  std::snprintf(text, sizeof text, "[%s] %zu/%zu %3.0f%% | %.0f/s | ETA %.1fs", bar.c_str(), shown,
                total, 100.0 * static_cast<double>(shown) / static_cast<double>(total), rate, eta);
  return text;
}

}  // namespace mproc::detail
