// Adding and dropping keys throughout the soak: tethered files with DISCOVER, and PROVIDE/FORGET.
#include "key_churn.h"

#include <cstdio>
#include <stdexcept>

namespace keychaind::soak {

KeyChurn::KeyChurn(const std::string& socket, const SoakKeys& keys, SoakTally& tally)
    : admin_(socket), keys_(keys), tally_(tally), present_(keys.churn_count(), false),
      provided_ids_(keys.churn_provided.size()) {
    // The daemon listens before its start-up scan and answers once that scan is done: a churn
    // file written before then would be found by that scan, not by our DISCOVER.
    if (const auto s = admin_.status(); s.key_count != keys.fixed_count())
        throw std::runtime_error("the daemon started with " + std::to_string(s.key_count) + " keys, not " +
                                 std::to_string(keys.fixed_count()));
}

KeyChurn::~KeyChurn() { stop(); }

void KeyChurn::add_all() {
    for (size_t i = 0; i < present_.size(); ++i)
        if (!present_[i]) add(i);
}

void KeyChurn::start(std::chrono::milliseconds period) {
    stopping_ = false;
    thread_ = std::thread([this, period] {
        std::unique_lock lock(mu_);
        while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
            toggle(next_);
            next_ = (next_ + 1) % present_.size();
        }
    });
}

void KeyChurn::stop() {
    {
        const std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void KeyChurn::toggle(size_t i) {
    if (present_[i])
        drop(i);
    else
        add(i);
}

uint32_t KeyChurn::discover(const std::string& why) {
    try {
        return admin_.discover();
    } catch (const keychain::Error& e) {
        tally_.admin_failure("DISCOVER after " + why + ": " + e.what());
        return 0;
    }
}

// Indices below churn_files.size() are file keys; the rest are provided KEKs.
void KeyChurn::add(size_t i) {
    const size_t files = keys_.churn_files.size();
    if (i < files) {
        const auto& f = keys_.churn_files[i];
        write_churn_file(f);
        if (const uint32_t n = discover("writing " + f.path); n != 1)
            tally_.admin_failure("DISCOVER after writing " + f.path + " added " + std::to_string(n) + " keys, not 1");
    } else {
        const auto& p = keys_.churn_provided[i - files];
        try {
            const std::string id = admin_.provide_encoded_key(p.encoded_key.c_str(), p.label);
            auto& first = provided_ids_[i - files];
            if (first.empty()) first = id;
            if (id != first) tally_.admin_failure("PROVIDE of " + p.label + " gave id " + id + ", before " + first);
        } catch (const keychain::Error& e) {
            tally_.admin_failure("PROVIDE of " + p.label + ": " + e.what());
        }
    }
    present_[i] = true;
    ++adds_;
}

void KeyChurn::drop(size_t i) {
    const size_t files = keys_.churn_files.size();
    if (i < files) {
        const auto& f = keys_.churn_files[i];
        if (std::remove(f.path.c_str()) != 0) tally_.admin_failure("cannot remove " + f.path);
        if (const uint32_t n = discover("removing " + f.path); n != 0)
            tally_.admin_failure("DISCOVER after removing " + f.path + " added " + std::to_string(n) + " keys");
    } else {
        const auto& p = keys_.churn_provided[i - files];
        try {
            if (const uint32_t n = admin_.forget(provided_ids_[i - files]); n != 1)
                tally_.admin_failure("FORGET of " + p.label + " dropped " + std::to_string(n) + " keys, not 1");
        } catch (const keychain::Error& e) {
            tally_.admin_failure("FORGET of " + p.label + ": " + e.what());
        }
    }
    present_[i] = false;
    ++drops_;
}

}  // namespace keychaind::soak
