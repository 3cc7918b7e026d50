// keychain::Client: a header-only C++ wrapper over libkeychain's C ABI (docs/client.md).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keychain/client.h"

namespace keychain {

// A failed call: the kc_ code (KC_ERR_*) and the daemon's message or the local reason.
class Error : public std::runtime_error {
public:
    Error(int code, const std::string& message)
        : std::runtime_error(std::string(kc_code_name(code)) + ": " + message), code_(code), message_(message) {}
    int code() const noexcept { return code_; }
    const char* name() const noexcept { return kc_code_name(code_); }
    const std::string& message() const noexcept { return message_; }

private:
    int code_;
    std::string message_;
};

namespace detail {
inline void check(int rc, const kc_client* c) {
    if (rc != KC_OK) throw Error(rc, kc_last_error(c));
}
}  // namespace detail

// Secret bytes from the library (a data key, a decrypted plaintext); wiped when destroyed.
class SecretBuffer {
public:
    SecretBuffer() = default;
    explicit SecretBuffer(kc_buffer b) noexcept : b_(b) {}
    SecretBuffer(SecretBuffer&& o) noexcept : b_(std::exchange(o.b_, kc_buffer{})) {}
    SecretBuffer& operator=(SecretBuffer&& o) noexcept {
        if (this != &o) {
            kc_buffer_free(&b_);
            b_ = std::exchange(o.b_, kc_buffer{});
        }
        return *this;
    }
    SecretBuffer(const SecretBuffer&) = delete;
    SecretBuffer& operator=(const SecretBuffer&) = delete;
    ~SecretBuffer() { kc_buffer_free(&b_); }

    const uint8_t* data() const noexcept { return b_.data; }
    size_t size() const noexcept { return b_.len; }
    bool empty() const noexcept { return b_.len == 0; }

private:
    kc_buffer b_{};
};

// A read-only view of caller bytes: a vector, a string, a SecretBuffer or a pointer and length.
struct Bytes {
    const uint8_t* data = nullptr;
    size_t size = 0;
    Bytes() = default;
    Bytes(const uint8_t* d, size_t n) : data(d), size(n) {}
    Bytes(const std::vector<uint8_t>& v) : data(v.data()), size(v.size()) {}
    Bytes(std::string_view s) : data(reinterpret_cast<const uint8_t*>(s.data())), size(s.size()) {}
    Bytes(const std::string& s) : Bytes(std::string_view(s)) {}
    Bytes(const char* s) : Bytes(std::string_view(s)) {}
    Bytes(const SecretBuffer& s) : data(s.data()), size(s.size()) {}
};

struct Status {
    std::string version;
    std::string backend;
    uint32_t key_count = 0;
    bool locked = false;
    uint64_t uptime_seconds = 0;
};

struct KeyInfo {
    std::string id;  // hex
    std::string label;
    int kind = 0;    // KC_KIND_*
    uint32_t bits = 0;
    uint8_t usages = 0;  // KC_USAGE_* bits
    std::vector<std::string> sources;
    bool tethered = false;
    std::optional<uint64_t> expires;  // seconds since the epoch
    bool present = true;
};

struct PublicKey {
    std::string id;
    int kind = 0;
    uint32_t bits = 0;
    std::vector<uint8_t> spki;                      // SubjectPublicKeyInfo DER
    std::vector<std::vector<uint8_t>> certificates;  // DER, leaf first
};

struct DataKey {
    SecretBuffer key;              // the 32-byte data key
    std::vector<uint8_t> wrapped;  // what to store next to the data
};

struct Event {
    int type = 0;  // KC_EVENT_ADDED or KC_EVENT_REMOVED
    KeyInfo key;
    std::string reason;
    uint32_t lost = 0;
};

namespace detail {
inline std::vector<uint8_t> take_vector(kc_buffer& b) {
    const SecretBuffer owner(std::exchange(b, kc_buffer{}));
    return std::vector<uint8_t>(owner.data(), owner.data() + owner.size());
}

inline KeyInfo to_key_info(const kc_key_info& k) {
    KeyInfo r;
    r.id = k.id;
    r.label = k.label != nullptr ? k.label : "";
    r.kind = k.kind;
    r.bits = k.bits;
    r.usages = k.usages;
    std::string_view s = k.sources != nullptr ? k.sources : "";
    while (!s.empty()) {
        const size_t nl = s.find('\n');
        r.sources.emplace_back(s.substr(0, nl));
        s = nl == std::string_view::npos ? std::string_view() : s.substr(nl + 1);
    }
    r.tethered = k.tethered != 0;
    if (k.expires != 0) r.expires = k.expires;
    r.present = k.present != 0;
    return r;
}

// Frees a C struct with its clear function when the scope ends.
template <class T, void (*Clear)(T*)>
struct Scoped {
    T value{};
    Scoped() = default;
    Scoped(const Scoped&) = delete;
    Scoped& operator=(const Scoped&) = delete;
    ~Scoped() { Clear(&value); }
};
}  // namespace detail

// One connection to keychaind. Like a socket: not thread-safe, use one per thread.
class Client {
public:
    // nullptr: $KEYCHAIND_SOCKET, else /run/keychaind/keychaind.sock.
    explicit Client(const char* socket_path = nullptr) {
        const int rc = kc_connect(socket_path, &c_);
        if (rc != KC_OK) throw Error(rc, kc_last_error(nullptr));
    }
    explicit Client(const std::string& socket_path) : Client(socket_path.c_str()) {}
    Client(Client&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Client& operator=(Client&& o) noexcept {
        if (this != &o) {
            kc_close(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    ~Client() { kc_close(c_); }

    kc_client* native_handle() const noexcept { return c_; }
    void set_timeout(uint32_t timeout_ms) { kc_set_timeout(c_, timeout_ms); }

    Status status() {
        kc_status_info s{};
        detail::check(kc_status(c_, &s), c_);
        return {s.version, s.backend, s.key_count, s.locked != 0, s.uptime_seconds};
    }

    std::vector<KeyInfo> list_keys(bool include_absent = false) {
        kc_key_info* infos = nullptr;
        size_t n = 0;
        detail::check(kc_list_keys(c_, include_absent ? 1 : 0, &infos, &n), c_);
        std::vector<KeyInfo> r;
        try {
            for (size_t i = 0; i < n; ++i) r.push_back(detail::to_key_info(infos[i]));
        } catch (...) {
            kc_key_info_free(infos, n);
            throw;
        }
        kc_key_info_free(infos, n);
        return r;
    }

    PublicKey get_public(const std::string& key) {
        detail::Scoped<kc_public_info, kc_public_info_clear> p;
        detail::check(kc_get_public(c_, key.c_str(), &p.value), c_);
        PublicKey r;
        r.id = p.value.id;
        r.kind = p.value.kind;
        r.bits = p.value.bits;
        r.spki.assign(p.value.public_key.data, p.value.public_key.data + p.value.public_key.len);
        for (size_t i = 0; i < p.value.certificate_count; ++i)
            r.certificates.emplace_back(p.value.certificates[i].data,
                                        p.value.certificates[i].data + p.value.certificates[i].len);
        return r;
    }

    std::vector<uint8_t> sign(const std::string& key, int alg, Bytes digest) {
        kc_buffer sig{};
        detail::check(kc_sign(c_, key.c_str(), alg, digest.data, digest.size, &sig), c_);
        return detail::take_vector(sig);
    }

    SecretBuffer decrypt(const std::string& key, int alg, Bytes ciphertext) {
        kc_buffer out{};
        detail::check(kc_decrypt(c_, key.c_str(), alg, ciphertext.data, ciphertext.size, &out), c_);
        return SecretBuffer(out);
    }

    DataKey generate_data_key(const std::string& kek, Bytes context = {}) {
        kc_buffer key{}, wrapped{};
        detail::check(kc_generate_data_key(c_, kek.c_str(), context.data, context.size, &key, &wrapped), c_);
        DataKey r;
        r.key = SecretBuffer(key);
        r.wrapped = detail::take_vector(wrapped);
        return r;
    }

    std::vector<uint8_t> wrap(const std::string& kek, Bytes data_key, Bytes context = {}) {
        kc_buffer out{};
        detail::check(kc_wrap(c_, kek.c_str(), data_key.data, data_key.size, context.data, context.size, &out), c_);
        return detail::take_vector(out);
    }

    SecretBuffer unwrap(Bytes wrapped, Bytes context = {}) {
        kc_buffer out{};
        detail::check(kc_unwrap(c_, wrapped.data, wrapped.size, context.data, context.size, &out), c_);
        return SecretBuffer(out);
    }

    std::vector<uint8_t> rewrap(Bytes wrapped, const std::string& target_kek, Bytes context = {}) {
        kc_buffer out{};
        detail::check(kc_rewrap(c_, wrapped.data, wrapped.size, context.data, context.size, target_kek.c_str(), &out),
                      c_);
        return detail::take_vector(out);
    }

    uint32_t discover() {
        uint32_t n = 0;
        detail::check(kc_discover(c_, &n), c_);
        return n;
    }

    // Returns the new key's id (hex). expires: seconds since the epoch, 0 = never.
    std::string provide_passphrase(const char* passphrase, const std::string& label = {}, uint64_t expires = 0) {
        char id[65] = {};
        detail::check(kc_provide_passphrase(c_, passphrase, label.empty() ? nullptr : label.c_str(), expires, id), c_);
        return id;
    }
    std::string provide_encoded_key(const char* encoded_key, const std::string& label = {}, uint64_t expires = 0) {
        char id[65] = {};
        detail::check(kc_provide_encoded_key(c_, encoded_key, label.empty() ? nullptr : label.c_str(), expires, id),
                      c_);
        return id;
    }

    // Returns how many keys the token's login added.
    uint32_t provide_pin(const std::string& token, const char* pin) {
        uint32_t n = 0;
        detail::check(kc_provide_pin(c_, token.c_str(), pin, &n), c_);
        return n;
    }

    uint32_t forget(const std::string& key) { return forget_impl(key.c_str()); }
    uint32_t forget_all() { return forget_impl(nullptr); }

    void lock(const char* password = nullptr) { detail::check(kc_lock(c_, password), c_); }
    void unlock(const char* password = nullptr) { detail::check(kc_unlock(c_, password), c_); }

    // Throws Error with code KC_ERR_TIMEOUT when the key does not come in time.
    KeyInfo wait(const std::string& key, uint32_t timeout_ms = 0) {
        detail::Scoped<kc_key_info, kc_key_info_clear> info;
        detail::check(kc_wait(c_, key.c_str(), timeout_ms, &info.value), c_);
        return detail::to_key_info(info.value);
    }

    void subscribe() { detail::check(kc_subscribe(c_), c_); }
    // nullopt when no event came within timeout_ms (-1 = wait forever).
    std::optional<Event> next_event(int timeout_ms = -1) {
        detail::Scoped<kc_event, kc_event_clear> ev;
        const int rc = kc_next_event(c_, timeout_ms, &ev.value);
        if (rc == KC_ERR_TIMEOUT) return std::nullopt;
        detail::check(rc, c_);
        Event r;
        r.type = ev.value.type;
        r.key = detail::to_key_info(ev.value.key);
        r.reason = ev.value.reason != nullptr ? ev.value.reason : "";
        r.lost = ev.value.lost;
        return r;
    }

private:
    uint32_t forget_impl(const char* key) {
        uint32_t n = 0;
        detail::check(kc_forget(c_, key, &n), c_);
        return n;
    }

    kc_client* c_ = nullptr;
};

// Pipelined SIGN / UNWRAP / GENERATE_DATA_KEY requests; see kc_batch_run.
class Batch {
public:
    Batch() : b_(kc_batch_new()) {
        if (b_ == nullptr) throw std::bad_alloc();
    }
    Batch(Batch&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    Batch& operator=(Batch&& o) noexcept {
        if (this != &o) {
            kc_batch_free(b_);
            b_ = std::exchange(o.b_, nullptr);
        }
        return *this;
    }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    ~Batch() { kc_batch_free(b_); }

    size_t add_sign(const std::string& key, int alg, Bytes digest) {
        size_t i = 0;
        added(kc_batch_add_sign(b_, key.c_str(), alg, digest.data, digest.size, &i));
        return i;
    }
    size_t add_unwrap(Bytes wrapped, Bytes context = {}) {
        size_t i = 0;
        added(kc_batch_add_unwrap(b_, wrapped.data, wrapped.size, context.data, context.size, &i));
        return i;
    }
    size_t add_generate_data_key(const std::string& kek, Bytes context = {}) {
        size_t i = 0;
        added(kc_batch_add_generate_data_key(b_, kek.c_str(), context.data, context.size, &i));
        return i;
    }
    size_t size() const noexcept { return kc_batch_size(b_); }

    // Throws only when the run itself failed (connection, protocol); per-item errors stay in
    // code(i) / message(i).
    void run(Client& c) { detail::check(kc_batch_run(c.native_handle(), b_), c.native_handle()); }

    int code(size_t i) const { return kc_batch_result(b_, i, nullptr); }
    std::string message(size_t i) const { return kc_batch_message(b_, i); }
    // Item i's result (signature, data key); throws Error carrying the item's code.
    SecretBuffer result(size_t i) const {
        kc_buffer out{};
        const int rc = kc_batch_result(b_, i, &out);
        if (rc != KC_OK) throw Error(rc, kc_batch_message(b_, i));
        return SecretBuffer(out);
    }
    std::vector<uint8_t> wrapped(size_t i) const {
        kc_buffer out{};
        const int rc = kc_batch_result_wrapped(b_, i, &out);
        if (rc != KC_OK) throw Error(rc, kc_batch_message(b_, i));
        return detail::take_vector(out);
    }

private:
    static void added(int rc) {
        if (rc != KC_OK) throw Error(rc, kc_strerror(rc));
    }
    kc_batch* b_ = nullptr;
};

}  // namespace keychain
