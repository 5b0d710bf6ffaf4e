#include "link.h"

#include <sched.h>
#include <sys/prctl.h>

#include <climits>
#include <cstdlib>
#include <utility>

#include "mproc/errors.h"

#include "futex.h"

namespace mproc::dist {

namespace {
constexpr int kTag = 7;
}  // namespace

void prepare_mpi_environment() noexcept {
  ::setenv("OMPI_MCA_mpi_yield_when_idle", "0", /*overwrite=*/0);
}

void SpinLock::lock() noexcept {
  for (int i = 0; held_.test_and_set(std::memory_order_acquire); ++i) {
    if (i < 16) {
      detail::cpu_pause();
    } else {
      ::sched_yield();
    }
  }
}

Link::Link()
    : environment_(boost::mpi::threading::serialized, /*abort_on_exception=*/false),
      rank_(world_.rank()),
      size_(world_.size()) {}

Link::~Link() {
  try {
    flush();
  } catch (...) {
    // Finalizing is what is left to do; a send that failed has nobody to report to.
  }
}

bool Link::poll(Message& out) {
  std::scoped_lock lock(mutex_);
  boost::optional<boost::mpi::status> status = world_.iprobe(boost::mpi::any_source, kTag);
  if (!status) return false;
  const int size = status->count<char>().value_or(0);
  out.source = status->source();
  out.bytes.resize(static_cast<std::size_t>(size));
  world_.recv(out.source, kTag, out.bytes.data(), size);
  return true;
}

void Link::send(int dest, std::string bytes) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX))
    throw ValueError("a message for rank " + std::to_string(dest) +
                     " is larger than MPI can send at once (2 GiB): use a smaller chunksize");
  auto owned = std::make_unique<std::string>(std::move(bytes));
  std::scoped_lock lock(mutex_);
  boost::mpi::request request =
      world_.isend(dest, kTag, owned->data(), static_cast<int>(owned->size()));
  sends_.push_back(Outgoing{std::move(owned), std::move(request)});
}

bool Link::progress() {
  std::scoped_lock lock(mutex_);
  if (sends_.empty()) return false;  // no call into MPI (each one runs its progress engine)
  for (auto it = sends_.begin(); it != sends_.end();) {
    if (it->request.test()) {
      it = sends_.erase(it);
    } else {
      ++it;
    }
  }
  return !sends_.empty();
}

void Link::flush() {
  std::scoped_lock lock(mutex_);
  for (Outgoing& o : sends_) o.request.wait();
  sends_.clear();
}

Backoff::Backoff() noexcept { (void)::prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL); }

std::chrono::microseconds Backoff::next(bool due) noexcept {
  if (std::chrono::steady_clock::now() - idle_since_ < kSpin) return std::chrono::microseconds(0);
  sleep_ = std::min(due ? kMaxDue : kMax, sleep_);
  auto now = sleep_;
  sleep_ = std::min(due ? kMaxDue : kMax, sleep_ * 2);
  return now;
}

}  // namespace mproc::dist
