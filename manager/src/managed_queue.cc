#include <utility>

#include "mproc/errors.h"
#include "mproc/managed_sync.h"

#include "managed_wait.h"

namespace mproc::managed {

using detail::dispatch;
using detail::Method;

Queue::Queue(std::int64_t maxsize) : maxsize_(maxsize > 0 ? maxsize : 0) {}

std::span<const Method<Queue>> Queue::exposed_methods() {
  static const Method<Queue> methods[] = {
      {"put", &dispatch<&Queue::put>},
      {"get", &dispatch<&Queue::get>},
      {"qsize", &dispatch<&Queue::qsize>},
      {"empty", &dispatch<&Queue::empty>},
      {"full", &dispatch<&Queue::full>},
      {"maxsize", &dispatch<&Queue::maxsize>},
      {"task_done", &dispatch<&Queue::task_done>},
      {"join", &dispatch<&Queue::join>},
      {"shutdown", &dispatch<&Queue::shutdown>},
      {"is_shutdown", &dispatch<&Queue::is_shutdown>},
  };
  return methods;
}

void Queue::put(std::string item, bool block, std::optional<double> timeout) {
  Deadline deadline = wait_detail::queue_deadline(block, timeout);
  {
    std::unique_lock lock(mutex_);
    if (shut_down_) throw ShutDown();
    auto has_room = [&] {
      return shut_down_ || maxsize_ == 0 || static_cast<std::int64_t>(items_.size()) < maxsize_;
    };
    if (!wait_detail::wait_until(not_full_, lock, deadline, has_room)) throw Full();
    if (shut_down_) throw ShutDown();
    items_.push_back(std::move(item));
    ++unfinished_;
  }
  not_empty_.notify_one();
}

std::string Queue::get(bool block, std::optional<double> timeout) {
  Deadline deadline = wait_detail::queue_deadline(block, timeout);
  std::string item;
  {
    std::unique_lock lock(mutex_);
    auto ready = [&] { return !items_.empty() || shut_down_; };
    if (!wait_detail::wait_until(not_empty_, lock, deadline, ready)) throw Empty();
    if (items_.empty()) throw ShutDown();
    item = std::move(items_.front());
    items_.pop_front();
  }
  not_full_.notify_one();
  return item;
}

std::int64_t Queue::qsize() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::int64_t>(items_.size());
}

bool Queue::empty() const {
  std::lock_guard lock(mutex_);
  return items_.empty();
}

bool Queue::full() const {
  std::lock_guard lock(mutex_);
  return maxsize_ > 0 && static_cast<std::int64_t>(items_.size()) >= maxsize_;
}

std::int64_t Queue::maxsize() const { return maxsize_; }

void Queue::task_done() {
  std::lock_guard lock(mutex_);
  if (unfinished_ <= 0) throw ValueError("task_done() called too many times");
  if (--unfinished_ == 0) all_done_.notify_all();
}

bool Queue::join(std::optional<double> timeout) {
  Deadline deadline = wait_detail::wait_deadline(timeout);
  std::unique_lock lock(mutex_);
  return wait_detail::wait_until(all_done_, lock, deadline, [&] { return unfinished_ == 0; });
}

void Queue::shutdown(bool immediate) {
  {
    std::lock_guard lock(mutex_);
    shut_down_ = true;
    if (immediate) {
      unfinished_ -= static_cast<std::int64_t>(items_.size());
      if (unfinished_ < 0) unfinished_ = 0;
      items_.clear();
      if (unfinished_ == 0) all_done_.notify_all();
    }
  }
  not_empty_.notify_all();
  not_full_.notify_all();
}

bool Queue::is_shutdown() const {
  std::lock_guard lock(mutex_);
  return shut_down_;
}

}  // namespace mproc::managed
