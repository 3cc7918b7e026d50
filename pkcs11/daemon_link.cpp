// DaemonLink: a per-process pool of libkeychain clients and the four requests the module makes.
#include "daemon_link.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "module_log.h"

namespace keychaind::pkcs11 {
namespace {

// Idle connections kept for reuse; more than this many concurrent callers open (and then close)
// extra ones rather than pile up sockets at the daemon, which caps connections per uid.
constexpr size_t kMaxIdle = 16;

}  // namespace

// One borrowed client, given back when the request is done (or failed).
class DaemonLink::Lease {
  public:
    explicit Lease(DaemonLink& link) : link_(link), client_(link.borrow()), pid_(getpid()) {}
    ~Lease() { link_.give_back(client_, pid_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    kc_client* get() const noexcept { return client_; }
    [[noreturn]] void fail(int code, const char* request) const {
        throw DaemonError(
            code, std::string(request) + ": " + kc_code_name(code) + ": " + kc_last_error(client_));
    }

  private:
    DaemonLink& link_;
    kc_client* client_;
    pid_t pid_;
};

DaemonLink::DaemonLink(std::string socket_path, uint32_t timeout_ms)
    : socket_path_(std::move(socket_path)), timeout_ms_(timeout_ms), pool_pid_(getpid()) {}

DaemonLink::~DaemonLink() {
    // In a child these are copies of the parent's descriptors: closing them does not disturb
    // the parent's connections.
    for (kc_client* c : idle_) kc_close(c);
}

kc_client* DaemonLink::borrow() {
    const pid_t me = getpid();
    {
        std::lock_guard lk(mu_);
        if (pool_pid_ != me) {
            // fork(): the idle sockets are the parent's. Drop the child's copies, never use them.
            for (kc_client* c : idle_) kc_close(c);
            idle_.clear();
            pool_pid_ = me;
            log_debug("process " + std::to_string(me) + " was forked: opening its own connections");
        }
        if (!idle_.empty()) {
            kc_client* c = idle_.back();
            idle_.pop_back();
            return c;
        }
    }
    kc_client* c = nullptr;
    const int rc = kc_connect(socket_path_.c_str(), &c);
    if (rc != KC_OK) throw DaemonError(rc, std::string("connect: ") + kc_last_error(nullptr));
    kc_set_timeout(c, timeout_ms_);
    return c;
}

void DaemonLink::give_back(kc_client* c, pid_t opened_by) noexcept {
    {
        std::lock_guard lk(mu_);
        if (opened_by == pool_pid_ && idle_.size() < kMaxIdle) {
            try {
                idle_.push_back(c);
                return;
            } catch (...) {
                // Out of memory: close it instead.
            }
        }
    }
    kc_close(c);
}

std::vector<ListedKey> DaemonLink::list_keys() {
    Lease lease(*this);
    kc_key_info* infos = nullptr;
    size_t n = 0;
    const int rc = kc_list_keys(lease.get(), 0, &infos, &n);
    if (rc != KC_OK) lease.fail(rc, "LIST_KEYS");
    struct Freer {
        kc_key_info* p;
        size_t n;
        ~Freer() { kc_key_info_free(p, n); }
    } freer{infos, n};
    if (n > kMaxKeys)
        log_debug("LIST_KEYS returned " + std::to_string(n) + " keys; using the first " +
                  std::to_string(kMaxKeys));
    std::vector<ListedKey> keys;
    keys.reserve(std::min(n, kMaxKeys));
    for (size_t i = 0; i < n && i < kMaxKeys; ++i) {
        const kc_key_info& k = infos[i];
        if (!k.present) continue;
        keys.push_back(ListedKey{k.id, k.label != nullptr ? k.label : "", k.kind, k.bits, k.usages,
                                 k.sources != nullptr ? k.sources : ""});
    }
    return keys;
}

PublicKeyAnswer DaemonLink::get_public(const std::string& id_hex) {
    Lease lease(*this);
    kc_public_info info{};
    const int rc = kc_get_public(lease.get(), id_hex.c_str(), &info);
    if (rc != KC_OK) lease.fail(rc, "GET_PUBLIC");
    struct Clearer {
        kc_public_info* p;
        ~Clearer() { kc_public_info_clear(p); }
    } clearer{&info};
    PublicKeyAnswer a;
    a.spki.assign(info.public_key.data, info.public_key.data + info.public_key.len);
    const size_t count = std::min(info.certificate_count, kMaxCertificatesPerKey);
    for (size_t i = 0; i < count; ++i) {
        const kc_buffer& b = info.certificates[i];
        a.certificates.emplace_back(b.data, b.data + b.len);
    }
    return a;
}

std::vector<uint8_t> DaemonLink::sign(const std::string& id_hex, int algorithm,
                                      std::span<const uint8_t> digest) {
    Lease lease(*this);
    kc_buffer sig{};
    const int rc =
        kc_sign(lease.get(), id_hex.c_str(), algorithm, digest.data(), digest.size(), &sig);
    if (rc != KC_OK) lease.fail(rc, "SIGN");
    std::vector<uint8_t> out(sig.data, sig.data + sig.len);
    kc_buffer_free(&sig);
    return out;
}

size_t DaemonLink::decrypt(const std::string& id_hex, int algorithm,
                           std::span<const uint8_t> ciphertext, std::span<uint8_t> out) {
    Lease lease(*this);
    kc_buffer plain{};
    const int rc = kc_decrypt(lease.get(), id_hex.c_str(), algorithm, ciphertext.data(),
                              ciphertext.size(), &plain);
    if (rc != KC_OK) lease.fail(rc, "DECRYPT");
    const size_t n = plain.len;
    if (n <= out.size() && n > 0) std::memcpy(out.data(), plain.data, n);
    kc_buffer_free(&plain);  // wipes
    return n;
}

}  // namespace keychaind::pkcs11
