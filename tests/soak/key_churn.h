// KeyChurn: the admin thread that adds and drops the churn keys while clients use them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "keychain/client.hpp"
#include "soak_keys.h"
#include "soak_tally.h"

namespace keychaind::soak {

class KeyChurn {
public:
    KeyChurn(const std::string& socket, const SoakKeys& keys, SoakTally& tally);
    ~KeyChurn();
    KeyChurn(const KeyChurn&) = delete;
    KeyChurn& operator=(const KeyChurn&) = delete;

    // Makes every churn key present, so each phase ends with the same keychain.
    void add_all();
    // Every `period`, drops the next churn key if present, else adds it back, until stop().
    void start(std::chrono::milliseconds period);
    void stop();

    uint64_t adds() const { return adds_; }
    uint64_t drops() const { return drops_; }

private:
    void toggle(size_t i);
    void add(size_t i);
    void drop(size_t i);
    uint32_t discover(const std::string& why);

    keychain::Client admin_;
    const SoakKeys& keys_;
    SoakTally& tally_;
    std::vector<bool> present_;
    std::vector<std::string> provided_ids_;  // the id PROVIDE gave each churn KEK the first time
    uint64_t adds_ = 0;
    uint64_t drops_ = 0;
    size_t next_ = 0;
    std::mutex mu_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace keychaind::soak
