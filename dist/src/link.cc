#include "link.h"

#include <climits>
#include <utility>

#include "mproc/errors.h"

namespace mproc::dist {

namespace {
constexpr int kTag = 7;
}  // namespace

Link::Link() : environment_(boost::mpi::threading::funneled, /*abort_on_exception=*/false) {}

Link::~Link() {
  try {
    flush();
  } catch (...) {
    // Finalizing is what is left to do; a send that failed has nobody to report to.
  }
}

bool Link::poll(Message& out) {
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
  boost::mpi::request request =
      world_.isend(dest, kTag, owned->data(), static_cast<int>(owned->size()));
  sends_.push_back(Outgoing{std::move(owned), std::move(request)});
}

bool Link::progress() {
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
  for (Outgoing& o : sends_) o.request.wait();
  sends_.clear();
}

std::chrono::microseconds Backoff::next() noexcept {
  if (std::chrono::steady_clock::now() - idle_since_ < kSpin) return std::chrono::microseconds(0);
  auto now = sleep_;
  sleep_ = std::min(kMax, sleep_ * 2);
  return now;
}

}  // namespace mproc::dist
