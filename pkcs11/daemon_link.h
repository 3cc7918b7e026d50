// DaemonLink: the module's connections to keychaind (libkeychain clients), safe across threads
// and fork().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "keychain/client.h"

namespace keychaind::pkcs11 {

// A key as LIST_KEYS describes it.
struct ListedKey {
    std::string id_hex;
    std::string label;
    uint8_t kind = 0;  // KC_KIND_*
    uint32_t bits = 0;
    uint8_t usages = 0;  // KC_USAGE_* bits
    std::string sources;
};

// GET_PUBLIC's answer.
struct PublicKeyAnswer {
    std::vector<uint8_t> spki;                       // SubjectPublicKeyInfo DER
    std::vector<std::vector<uint8_t>> certificates;  // X.509 DER, leaf first
};

// A failed request: libkeychain's code (KC_ERR_*: the daemon's error codes 1..10, or a local
// failure 100..104) and the message, for the debug log.
class DaemonError : public std::runtime_error {
  public:
    DaemonError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const noexcept { return code_; }
    // NO_SUCH_KEY or KEY_NOT_PRESENT: the key has gone from the keychain.
    bool key_gone() const noexcept {
        return code_ == KC_ERR_NO_SUCH_KEY || code_ == KC_ERR_KEY_NOT_PRESENT;
    }

  private:
    int code_;
};

// Hard caps on what the daemon may hand the module.
inline constexpr size_t kMaxKeys = 4096;
inline constexpr size_t kMaxCertificatesPerKey = 16;

// A pool of connections, one borrowed per request, so threads never share a socket. Each
// connection remembers the process that opened it: after fork() the child never touches its
// parent's sockets (it opens its own), which is how nginx's workers can sign with a module the
// master loaded. libkeychain reconnects once when the daemon closed a socket (a restart), and
// sends again what is safe to send again (every request made here is).
class DaemonLink {
  public:
    DaemonLink(std::string socket_path, uint32_t timeout_ms);
    ~DaemonLink();
    DaemonLink(const DaemonLink&) = delete;
    DaemonLink& operator=(const DaemonLink&) = delete;

    const std::string& socket_path() const noexcept { return socket_path_; }

    // Every method throws DaemonError.
    std::vector<ListedKey> list_keys();
    PublicKeyAnswer get_public(const std::string& id_hex);
    std::vector<uint8_t> sign(const std::string& id_hex, int algorithm,
                              std::span<const uint8_t> digest);
    // Decrypts; the plaintext goes straight into `out` when it fits and is wiped everywhere else.
    // Returns the plaintext's length (which may exceed out.size(): then nothing was copied).
    size_t decrypt(const std::string& id_hex, int algorithm, std::span<const uint8_t> ciphertext,
                   std::span<uint8_t> out);

    // pthread_atfork: the pool's lock is taken before fork() and released on both sides, so the
    // child never inherits it locked.
    void lock_for_fork() noexcept { mu_.lock(); }
    void unlock_after_fork() noexcept { mu_.unlock(); }

  private:
    class Lease;
    kc_client* borrow();
    void give_back(kc_client* c, pid_t opened_by) noexcept;

    std::string socket_path_;
    uint32_t timeout_ms_;
    std::mutex mu_;  // guards the two fields below
    pid_t pool_pid_;
    std::vector<kc_client*> idle_;
};

}  // namespace keychaind::pkcs11
