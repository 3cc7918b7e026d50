// TokenKeyMaker: keygen --token — a key pair generated inside a PKCS#11 token (C_GenerateKeyPair,
// sensitive and never extractable), optionally its self-signed certificate stored beside it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/secret_bytes.h"
#include "x509_writer.h"

namespace keychain::ctl {

struct TokenModules;
struct TokenSession;

class TokenKeyMaker {
  public:
    // Loads the module (`module`: a p11-kit registry name or an absolute path; empty: the URI's
    // module-name/module-path, else every module p11-kit knows), finds the one token `token_uri`
    // matches, opens a read/write session and logs in with `pin` (NUL-terminated). CtlError naming
    // the module, token or PKCS#11 return value that failed.
    TokenKeyMaker(const std::string& token_uri, const std::string& module,
                  const keychaind::SecretBytes& pin);
    ~TokenKeyMaker();
    TokenKeyMaker(const TokenKeyMaker&) = delete;
    TokenKeyMaker& operator=(const TokenKeyMaker&) = delete;

    // Generates the pair (RSA `rsa_bits`, or EC P-256/P-384 by `kc_kind`) with `label` and a fresh
    // random CKA_ID; returns its SubjectPublicKeyInfo.
    std::vector<uint8_t> generate(int kc_kind, unsigned rsa_bits, const std::string& label);
    // A signature over `hash` by the generated key, in X.509's form (ECDSA: DER).
    std::vector<uint8_t> sign(const SignatureAlgorithm& alg, const std::vector<uint8_t>& hash);
    // Stores a certificate object (CKA_ID and CKA_LABEL of the key).
    void store_certificate(const std::vector<uint8_t>& der);
    // "pkcs11:token=…;object=…;id=…;type=private"
    std::string key_uri() const;

  private:
    std::unique_ptr<TokenModules> modules_;
    std::unique_ptr<TokenSession> session_;
    std::string label_;
    std::vector<uint8_t> id_;
    unsigned long private_key_ = 0;
    int kc_kind_ = 0;
};

}  // namespace keychain::ctl
