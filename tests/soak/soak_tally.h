// SoakTally: what the soak's clients and admin thread saw, shared between their threads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace keychaind::soak {

class SoakTally {
public:
    // One request answered as it must be (a correct result, or KEY_NOT_PRESENT for a churn key).
    void ok() { ops_.fetch_add(1, std::memory_order_relaxed); }
    // A documented error the request may get: counted by its kc_ code.
    void expected_error(int code) {
        ops_.fetch_add(1, std::memory_order_relaxed);
        by_code_.at(slot(code)).fetch_add(1, std::memory_order_relaxed);
    }
    // A wrong reply (bad signature, wrong data key, an error that must not happen): the soak fails.
    void wrong(const std::string& what) {
        ops_.fetch_add(1, std::memory_order_relaxed);
        wrong_.fetch_add(1, std::memory_order_relaxed);
        const std::lock_guard lock(mu_);
        if (first_wrong_.size() < kKeptMessages) first_wrong_.push_back(what);
    }

    // The admin thread's add or drop did not do what the daemon documents: the soak fails.
    void admin_failure(const std::string& what) {
        wrong_.fetch_add(1, std::memory_order_relaxed);
        const std::lock_guard lock(mu_);
        if (first_wrong_.size() < kKeptMessages) first_wrong_.push_back("admin: " + what);
    }

    uint64_t ops() const { return ops_.load(); }
    uint64_t wrong_count() const { return wrong_.load(); }
    uint64_t expected_errors(int code) const { return by_code_.at(slot(code)).load(); }
    std::vector<std::string> first_wrong() const {
        const std::lock_guard lock(mu_);
        return first_wrong_;
    }

private:
    static constexpr size_t kKeptMessages = 10;
    static constexpr size_t kSlots = 16;  // kc_ daemon codes 1..10; local ones (100+) share the last
    static size_t slot(int code) { return code > 0 && code < static_cast<int>(kSlots) ? static_cast<size_t>(code) : 0; }

    std::atomic<uint64_t> ops_{0};
    std::atomic<uint64_t> wrong_{0};
    std::array<std::atomic<uint64_t>, kSlots> by_code_{};
    mutable std::mutex mu_;
    std::vector<std::string> first_wrong_;
};

}  // namespace keychaind::soak
