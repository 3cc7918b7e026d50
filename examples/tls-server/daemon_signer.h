// DaemonSigner: SIGN requests for one key of keychaind, from any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "keychain/client.hpp"

namespace keychain::tls_server {

class DaemonSigner {
  public:
    // `key_id`: the key's id (hex), never a label, so a relabelled key cannot swap in another.
    // `timeout_ms`: how long one SIGN may wait for the daemon (a stuck daemon fails the
    // handshake instead of holding its worker).
    DaemonSigner(std::string socket, std::string key_id, uint32_t timeout_ms);

    // The signature, or an empty vector when the daemon refused or could not be reached; the
    // reason is then last_error() on this thread (for the connection's log line).
    std::vector<uint8_t> sign(int kc_sign_algorithm, std::span<const uint8_t> digest);
    static const std::string& last_error();
    // At the start of each connection, so a failure is never blamed on an earlier one's signature.
    static void clear_last_error();

    const std::string& key_id() const { return key_id_; }

  private:
    std::unique_ptr<keychain::Client> take_client();
    void give_back(std::unique_ptr<keychain::Client> client);

    const std::string socket_;
    const std::string key_id_;
    const uint32_t timeout_ms_;
    std::mutex mu_;
    // A libkeychain client serves one thread at a time: idle ones wait here between signatures.
    std::vector<std::unique_ptr<keychain::Client>> idle_;
};

}  // namespace keychain::tls_server
