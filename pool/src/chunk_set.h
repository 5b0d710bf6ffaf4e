// The chunk numbers of a job that are submitted but not answered yet: a set of uint32 with
// std::set's members that the engines use, kept as a bitmap. A job's chunks are numbered from 0
// up and mostly answered in about that order, so the set is dense; std::set spent a node (an
// allocation, and a fresh heap page every 85 chunks) and a rebalance per chunk, which for
// map(chunksize=1) of 200,000 items was a tenth of the pool's time. The words below the lowest
// member are dropped as answers come in, so an endless imap keeps bounded memory, and a job whose
// outstanding chunks lie within 64 of each other needs no allocation at all.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

namespace mproc::detail {

class ChunkSet {
 public:
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::uint32_t;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::uint32_t*;
    using reference = std::uint32_t;

    const_iterator() = default;
    std::uint32_t operator*() const noexcept {
      return set_->base_ + static_cast<std::uint32_t>(word_ * 64 + bit_);
    }
    const_iterator& operator++() noexcept {
      ++bit_;
      settle();
      return *this;
    }
    const_iterator operator++(int) noexcept {
      const_iterator before = *this;
      ++*this;
      return before;
    }
    bool operator==(const const_iterator& other) const noexcept {
      return word_ == other.word_ && bit_ == other.bit_;
    }

   private:
    friend class ChunkSet;
    const_iterator(const ChunkSet* set, std::size_t word, unsigned bit) noexcept
        : set_(set), word_(word), bit_(bit) {
      settle();
    }
    // Moves to the first member at or after (word_, bit_), or to end().
    void settle() noexcept {
      const std::size_t words = set_->words();
      while (word_ < words) {
        const std::uint64_t rest = bit_ < 64 ? set_->word(word_) >> bit_ : 0;
        if (rest != 0) {
          bit_ += static_cast<unsigned>(std::countr_zero(rest));
          return;
        }
        ++word_;
        bit_ = 0;
      }
      word_ = words;
      bit_ = 0;
    }

    const ChunkSet* set_ = nullptr;
    std::size_t word_ = 0;
    unsigned bit_ = 0;
  };

  // Whether `chunk` was not a member.
  bool insert(std::uint32_t chunk) {
    if (count_ == 0) rebase(chunk);
    if (chunk < base_) lower_base(chunk);
    const std::size_t index = (chunk - base_) / 64;
    if (index >= words()) rest_.resize(skip_ + index, 0);
    std::uint64_t& w = word(index);
    const std::uint64_t mask = std::uint64_t{1} << ((chunk - base_) % 64);
    if (w & mask) return false;
    w |= mask;
    ++count_;
    return true;
  }
  std::size_t erase(std::uint32_t chunk) noexcept {
    if (count(chunk) == 0) return 0;
    word((chunk - base_) / 64) &= ~(std::uint64_t{1} << ((chunk - base_) % 64));
    if (--count_ == 0) {
      clear();
    } else {
      drop_empty_front();
    }
    return 1;
  }
  [[nodiscard]] std::size_t count(std::uint32_t chunk) const noexcept {
    if (chunk < base_) return 0;
    const std::size_t index = (chunk - base_) / 64;
    if (index >= words()) return 0;
    return (word(index) >> ((chunk - base_) % 64)) & 1u;
  }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  void clear() noexcept {
    first_ = 0;
    rest_.clear();
    skip_ = 0;
    count_ = 0;
  }
  [[nodiscard]] const_iterator begin() const noexcept { return {this, 0, 0}; }
  [[nodiscard]] const_iterator end() const noexcept { return {this, words(), 0}; }

 private:
  // Word 0 (first_) covers [base_, base_ + 64), word i the 64 chunks after word i - 1; words
  // 1, 2, ... are rest_[skip_], rest_[skip_ + 1], ... (rest_'s first skip_ words are dropped ones,
  // removed in one go once they are half of it, so each word is moved a bounded number of times).
  [[nodiscard]] std::size_t words() const noexcept { return 1 + rest_.size() - skip_; }
  [[nodiscard]] std::uint64_t word(std::size_t index) const noexcept {
    return index == 0 ? first_ : rest_[skip_ + index - 1];
  }
  std::uint64_t& word(std::size_t index) noexcept {
    return index == 0 ? first_ : rest_[skip_ + index - 1];
  }
  void rebase(std::uint32_t chunk) noexcept { base_ = chunk - chunk % 64; }
  // A member below the base (a chunk submitted again after a lower one was answered): rare, so
  // the words simply move up.
  void lower_base(std::uint32_t chunk) {
    const std::uint32_t new_base = chunk - chunk % 64;
    std::vector<std::uint64_t> all((base_ - new_base) / 64, 0);
    all.push_back(first_);
    all.insert(all.end(), rest_.begin() + static_cast<std::ptrdiff_t>(skip_), rest_.end());
    first_ = all.front();
    rest_.assign(all.begin() + 1, all.end());
    skip_ = 0;
    base_ = new_base;
  }
  // While the lowest word is empty (and a member remains above it), the base moves past it.
  void drop_empty_front() noexcept {
    while (first_ == 0 && words() > 1) {
      first_ = rest_[skip_++];
      base_ += 64;
    }
    if (skip_ > rest_.size() / 2) {
      rest_.erase(rest_.begin(), rest_.begin() + static_cast<std::ptrdiff_t>(skip_));
      skip_ = 0;
    }
  }

  std::uint32_t base_ = 0;
  std::uint64_t first_ = 0;
  std::vector<std::uint64_t> rest_;
  std::size_t skip_ = 0;
  std::size_t count_ = 0;
};

}  // namespace mproc::detail
