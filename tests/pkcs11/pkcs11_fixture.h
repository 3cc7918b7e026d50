// Fixtures for the PKCS#11 module's tests: a daemon holding test identities, the module loaded
// with dlopen(), and mbedTLS checks of what it signs.
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon_process.h"
#include "soft_token.h"
#include "temp_dir.h"
#include "test_bytes.h"
#include "test_keys.h"

namespace keychaind::test {

// The identities in every test daemon's keychain file (made once per process):
//   "web-ec"    EC P-256, self-signed for CN=localhost
//   "web-rsa"   RSA-2048, self-signed for CN=localhost
//   "web-chain" EC P-384, its certificate issued by `chain_ca` (EC P-256, whose key is not in the
//               keychain): a chain of two
// and one AES key, "kek", which has no PKCS#11 object.
struct TestKeychain {
    TestIdentity ec;
    TestIdentity rsa;
    TestIdentity chain_leaf;
    TestIdentity chain_ca;
    Bytes chain_leaf_cert_der;  // the leaf certificate issued by chain_ca
    std::string json;           // the .4DKeyChain file
};
const TestKeychain& test_keychain();

// A running keychaind on a socket in a temp dir, holding either test_keychain() in a key
// directory, or (second constructor) no file keys but the EC and RSA keys of a SoftHSM2 token
// behind it (one [[pkcs11.token]], its PIN in a pin_file), waited for until both are present.
// Either way it writes its audit log to audit_path().
class KeychainDaemon {
  public:
    KeychainDaemon();
    explicit KeychainDaemon(const SoftToken& token);
    const std::string& socket() const { return socket_; }
    const std::string& dir() const { return dir_.path(); }
    std::string audit_path() const { return dir_.file("audit.log"); }
    DaemonProcess& process() { return *daemon_; }
    void stop();
    void start();  // on the same socket, with the same keys

  private:
    TempDir dir_{"keychaind-pkcs11"};
    std::string config_tail_;
    std::string socket_;
    std::unique_ptr<DaemonProcess> daemon_;
};

// The built module. Loading it sets KEYCHAIND_SOCKET to `socket` and KEYCHAIND_PKCS11_CONFIG to
// `config` (an empty file when none is given), then calls C_Initialize unless told not to;
// the destructor calls C_Finalize and dlclose().
class LoadedModule {
  public:
    explicit LoadedModule(const std::string& socket, const std::string& config = "",
                          bool initialize = true);
    ~LoadedModule();
    LoadedModule(const LoadedModule&) = delete;
    LoadedModule& operator=(const LoadedModule&) = delete;

    static std::string path();
    CK_FUNCTION_LIST* operator->() const { return fns_; }
    void* handle() const { return handle_; }

    CK_SESSION_HANDLE open_session();
    std::vector<CK_OBJECT_HANDLE> find(CK_SESSION_HANDLE s, std::vector<CK_ATTRIBUTE> tmpl);
    // The one object of this class with this label.
    CK_OBJECT_HANDLE object(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const std::string& label);
    Bytes attribute(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type);
    CK_ULONG ulong_attribute(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type);
    bool bool_attribute(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type);

    // C_SignInit + C_Sign (size query first); returns the CK_RV of the first call that failed.
    CK_RV try_sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const CK_MECHANISM& m,
                   const Bytes& data, Bytes& sig);
    Bytes sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const CK_MECHANISM& m, const Bytes& data);
    // C_SignInit, C_SignUpdate in `chunk`-byte parts, C_SignFinal.
    Bytes sign_multipart(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const CK_MECHANISM& m,
                         const Bytes& data, size_t chunk);

  private:
    void* handle_ = nullptr;
    CK_FUNCTION_LIST* fns_ = nullptr;
    bool initialized_ = false;
};

inline CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const void* value, CK_ULONG len) {
    return CK_ATTRIBUTE{type, const_cast<void*>(value), len};
}
template <class T>
CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const T& value) {
    return attr(type, &value, sizeof value);
}
inline CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const std::string& text) {
    return attr(type, text.data(), text.size());
}
inline CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const Bytes& bytes) {
    return attr(type, bytes.data(), bytes.size());
}

// --- mbedTLS, independent of the module and the daemon --------------------------------------
enum class Hash { Sha1, Sha256, Sha384, Sha512 };
Bytes digest(Hash h, const Bytes& data);
Bytes digest_info(Hash h, const Bytes& hash);  // DER DigestInfo, for CKM_RSA_PKCS
// r || s (each half the length) against the SPKI's EC key.
bool ecdsa_verifies(const Bytes& spki, const Bytes& hash, const Bytes& raw_signature);
// PKCS#1 v1.5 over the DigestInfo of `hash`; the _raw form over bytes padded as they are.
bool rsa_pkcs1_verifies(const Bytes& spki, Hash h, const Bytes& hash, const Bytes& sig);
bool rsa_pkcs1_raw_verifies(const Bytes& spki, const Bytes& data, const Bytes& sig);
// PSS with MGF1 over h and a salt of h's length.
bool rsa_pss_verifies(const Bytes& spki, Hash h, const Bytes& hash, const Bytes& sig);
Bytes rsa_oaep_encrypt(const Bytes& spki, Hash h, const Bytes& plaintext);

}  // namespace keychaind::test
