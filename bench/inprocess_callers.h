// Callers for run_threads: the daemon's own crypto backend, and a PKCS#11 module's C_Sign.
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/crypto_backend.h"
#include "threaded_calls.h"

namespace keychaind::test {
class Pkcs11Session;
}

namespace keychaind::bench {

// crypto_backend().sign on `key`; several callers may share one key (as the daemon does) or
// each own one.
std::unique_ptr<Caller> backend_sign_caller(std::shared_ptr<const PrivateKey> key,
                                            SignAlgorithm alg, size_t digest_size);

// C_SignInit + C_Sign with `mechanism` (no parameters) on the private key labelled `key_label`,
// in a session this caller owns.
std::unique_ptr<Caller> pkcs11_sign_caller(std::unique_ptr<test::Pkcs11Session> session,
                                           const std::string& key_label,
                                           CK_MECHANISM_TYPE mechanism, std::vector<uint8_t> input);

// What CKM_RSA_PKCS signs for a TLS server: a SHA-256 DigestInfo.
std::vector<uint8_t> sha256_digest_info();

}  // namespace keychaind::bench
