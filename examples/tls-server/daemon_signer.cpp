// SIGN through a small pool of libkeychain connections.
#include "daemon_signer.h"

namespace keychain::tls_server {

namespace {
thread_local std::string t_last_error;
constexpr size_t kMaxIdleClients = 16;
}  // namespace

DaemonSigner::DaemonSigner(std::string socket, std::string key_id, uint32_t timeout_ms)
    : socket_(std::move(socket)), key_id_(std::move(key_id)), timeout_ms_(timeout_ms) {}

const std::string& DaemonSigner::last_error() { return t_last_error; }
void DaemonSigner::clear_last_error() { t_last_error.clear(); }

std::unique_ptr<keychain::Client> DaemonSigner::take_client() {
    {
        std::lock_guard lk(mu_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return c;
        }
    }
    auto c = std::make_unique<keychain::Client>(socket_.empty() ? nullptr : socket_.c_str());
    c->set_timeout(timeout_ms_);
    return c;
}

void DaemonSigner::give_back(std::unique_ptr<keychain::Client> client) {
    std::lock_guard lk(mu_);
    if (idle_.size() < kMaxIdleClients) idle_.push_back(std::move(client));
}

std::vector<uint8_t> DaemonSigner::sign(int kc_sign_algorithm, std::span<const uint8_t> digest) {
    t_last_error.clear();
    try {
        auto client = take_client();
        auto sig =
            client->sign(key_id_, kc_sign_algorithm, keychain::Bytes(digest.data(), digest.size()));
        give_back(std::move(client));
        return sig;
    } catch (const keychain::Error& e) {
        // A failed client is dropped, not pooled: libkeychain reconnects, but a fresh one is
        // simpler.
        t_last_error = std::string("keychaind SIGN failed: ") + e.name() + ": " + e.message();
    } catch (const std::exception& e) {
        t_last_error = std::string("keychaind SIGN failed: ") + e.what();
    }
    return {};
}

}  // namespace keychain::tls_server
