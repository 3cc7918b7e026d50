// RingQueue: a FIFO on one array that grows (doubling) only when it is full.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace keychaind {

// std::deque, used as a FIFO, frees a block as its front passes it and allocates one as its back
// needs it: a malloc() every few pushes for ever. A ring allocates only to reach a new high-water
// mark, so a queue in steady state allocates nothing. T must be default-constructible and movable.
template <typename T>
class RingQueue {
public:
    explicit RingQueue(size_t capacity) : slots_(std::max<size_t>(capacity, 1)) {}

    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    size_t capacity() const { return slots_.size(); }
    // i-th from the front, i < size().
    T& operator[](size_t i) { return slots_[(head_ + i) % slots_.size()]; }
    const T& operator[](size_t i) const { return slots_[(head_ + i) % slots_.size()]; }
    T& front() { return slots_[head_]; }

    void push_back(T value) {
        if (size_ == slots_.size()) grow();
        slots_[(head_ + size_) % slots_.size()] = std::move(value);
        ++size_;
    }
    // The slot keeps no state of its own: what front() held is destroyed here unless moved out.
    void pop_front() {
        [[maybe_unused]] T gone = std::move(slots_[head_]);
        head_ = (head_ + 1) % slots_.size();
        --size_;
    }

private:
    void grow() {
        std::vector<T> bigger(slots_.size() * 2);
        for (size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
        slots_.swap(bigger);
        head_ = 0;
    }

    std::vector<T> slots_;
    size_t head_ = 0;
    size_t size_ = 0;
};

}  // namespace keychaind
