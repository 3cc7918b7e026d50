// The PKCS#11 test fixtures: daemon, module loading, mbedTLS verification.
#include "pkcs11_fixture.h"

#include <dlfcn.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <keychain/client.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "known_secrets.h"

#ifndef KEYCHAIND_PKCS11_MODULE
#error "KEYCHAIND_PKCS11_MODULE must name the built module"
#endif

namespace keychaind::test {
namespace {

void write_private_file(const std::string& path, const std::string& content) {
    if (is_keychain_file_name(path)) remember_keychain_file(content);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    f.close();
    chmod(path.c_str(), 0600);
}

Bytes der_of_pem_certificate(const std::string& pem) {
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    const int rc = mbedtls_x509_crt_parse(&crt, reinterpret_cast<const unsigned char*>(pem.c_str()),
                                          pem.size() + 1);
    Bytes der;
    if (rc == 0) der.assign(crt.raw.p, crt.raw.p + crt.raw.len);
    mbedtls_x509_crt_free(&crt);
    if (rc != 0) throw std::runtime_error("test certificate does not parse");
    return der;
}

TestKeychain make_test_keychain() {
    TestKeychain k;
    k.ec = make_identity(KeyKind::EcP256, 2048, "localhost");
    k.rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    k.chain_ca = make_identity(KeyKind::EcP256, 2048, "keychaind test CA");
    k.chain_leaf = make_identity(KeyKind::EcP384, 2048, "chain leaf");
    const std::string leaf_pem = issue_certificate(k.chain_leaf, k.chain_ca, "chain leaf");
    k.chain_leaf_cert_der = der_of_pem_certificate(leaf_pem);
    nlohmann::json entries = nlohmann::json::array();
    entries.push_back(
        {{"name", "web-ec"}, {"privateKey", k.ec.key_pem_pkcs8}, {"certificate", k.ec.cert_pem}});
    entries.push_back({{"name", "web-rsa"},
                       {"privateKey", k.rsa.key_pem_legacy},
                       {"certificate", k.rsa.cert_pem}});
    entries.push_back({{"name", "web-chain"},
                       {"privateKey", k.chain_leaf.key_pem_legacy},
                       {"certificate", leaf_pem + k.chain_ca.cert_pem}});
    entries.push_back({{"name", "kek"}, {"encodedKey", std::string(64, '7')}});
    k.json = entries.dump(2);
    return k;
}

struct Pk {
    mbedtls_pk_context ctx;
    explicit Pk(const Bytes& spki) {
        mbedtls_pk_init(&ctx);
        if (mbedtls_pk_parse_public_key(&ctx, spki.data(), spki.size()) != 0)
            throw std::runtime_error("test SPKI does not parse");
    }
    ~Pk() { mbedtls_pk_free(&ctx); }
    Pk(const Pk&) = delete;
    Pk& operator=(const Pk&) = delete;
};

mbedtls_md_type_t md(Hash h) {
    switch (h) {
        case Hash::Sha1:
            return MBEDTLS_MD_SHA1;
        case Hash::Sha256:
            return MBEDTLS_MD_SHA256;
        case Hash::Sha384:
            return MBEDTLS_MD_SHA384;
        case Hash::Sha512:
            return MBEDTLS_MD_SHA512;
    }
    return MBEDTLS_MD_NONE;
}

}  // namespace

const TestKeychain& test_keychain() {
    static const TestKeychain k = make_test_keychain();
    return k;
}

KeychainDaemon::KeychainDaemon() {
    const std::string keys_dir = dir_.file("keys");
    mkdir(keys_dir.c_str(), 0700);
    write_private_file(keys_dir + "/identities.4DKeyChain", test_keychain().json);
    config_tail_ = "[audit]\ntarget = \"file\"\nfile = \"" + audit_path() +
                   "\"\n\n[keys]\ndirectories = [\"" + keys_dir + "\"]\n";
    start();
    socket_ = daemon_->socket_path();
}

KeychainDaemon::KeychainDaemon(const SoftToken& token) {
    // The token's PIN file: root's, mode 0600 (these tests run as root), as the daemon demands.
    const std::string pin_file = dir_.file("token.pin");
    write_private_file(pin_file, token.pin());
    // "softhsm2": the module by its p11-kit registry name, as an operator would write it.
    config_tail_ = "[audit]\ntarget = \"file\"\nfile = \"" + audit_path() +
                   "\"\n\n[pkcs11]\npoll_ms = 500\n\n[[pkcs11.token]]\nname = \"" + token.label() +
                   "\"\nmodule = \"softhsm2\"\nuri = \"" + token.uri() + "\"\npin_file = \"" +
                   pin_file + "\"\n";
    start();
    socket_ = daemon_->socket_path();
    // The token is read in the background: wait until both of its key pairs are in.
    try {
        keychain::Client c(socket_);
        c.wait(token.ec_key_id(), 15000);
        c.wait(token.rsa_key_id(), 15000);
    } catch (const keychain::Error& e) {
        throw std::runtime_error(std::string("the token's keys did not appear in keychaind: ") + e.what() +
                                 "\n" + daemon_->log());
    }
}

void KeychainDaemon::start() {
    daemon_.reset();
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), config_tail_);
}

void KeychainDaemon::stop() {
    if (daemon_ && daemon_->running()) daemon_->stop(SIGTERM);
}

// --- LoadedModule ---------------------------------------------------------------------------

std::string LoadedModule::path() { return KEYCHAIND_PKCS11_MODULE; }

LoadedModule::LoadedModule(const std::string& socket, const std::string& config, bool initialize) {
    setenv("KEYCHAIND_SOCKET", socket.c_str(), 1);
    if (config.empty()) {
        // An empty config file: the host's /etc/keychaind/pkcs11.conf never leaks into a test.
        static TempDir empty_config_dir("keychaind-pkcs11-conf");
        const std::string empty = empty_config_dir.file("empty.conf");
        write_private_file(empty, "");
        setenv("KEYCHAIND_PKCS11_CONFIG", empty.c_str(), 1);
    } else {
        setenv("KEYCHAIND_PKCS11_CONFIG", config.c_str(), 1);
    }
    handle_ = dlopen(path().c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) throw std::runtime_error(std::string("dlopen: ") + dlerror());
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle_, "C_GetFunctionList"));
    if (get == nullptr || get(&fns_) != CKR_OK) {
        dlclose(handle_);
        throw std::runtime_error("C_GetFunctionList failed");
    }
    if (initialize) {
        CK_C_INITIALIZE_ARGS args{};
        args.flags = CKF_OS_LOCKING_OK;
        const CK_RV rv = fns_->C_Initialize(&args);
        if (rv != CKR_OK) {
            dlclose(handle_);
            throw std::runtime_error("C_Initialize: rv " + std::to_string(rv));
        }
        initialized_ = true;
    }
}

LoadedModule::~LoadedModule() {
    if (fns_ != nullptr) fns_->C_Finalize(nullptr);
    dlclose(handle_);
}

CK_SESSION_HANDLE LoadedModule::open_session() {
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    REQUIRE(fns_->C_OpenSession(0, CKF_SERIAL_SESSION, nullptr, nullptr, &s) == CKR_OK);
    return s;
}

std::vector<CK_OBJECT_HANDLE> LoadedModule::find(CK_SESSION_HANDLE s,
                                                 std::vector<CK_ATTRIBUTE> tmpl) {
    REQUIRE(fns_->C_FindObjectsInit(s, tmpl.data(), tmpl.size()) == CKR_OK);
    std::vector<CK_OBJECT_HANDLE> all;
    CK_OBJECT_HANDLE batch[3];
    CK_ULONG n = 0;
    do {
        REQUIRE(fns_->C_FindObjects(s, batch, 3, &n) == CKR_OK);
        all.insert(all.end(), batch, batch + n);
    } while (n > 0);
    REQUIRE(fns_->C_FindObjectsFinal(s) == CKR_OK);
    return all;
}

CK_OBJECT_HANDLE LoadedModule::object(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                      const std::string& label) {
    const auto found = find(s, {attr(CKA_CLASS, cls), attr(CKA_LABEL, label)});
    REQUIRE(found.size() == 1);
    return found[0];
}

Bytes LoadedModule::attribute(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    REQUIRE(fns_->C_GetAttributeValue(s, o, &a, 1) == CKR_OK);
    Bytes v(a.ulValueLen);
    a.pValue = v.data();
    REQUIRE(fns_->C_GetAttributeValue(s, o, &a, 1) == CKR_OK);
    REQUIRE(a.ulValueLen == v.size());
    return v;
}

CK_ULONG LoadedModule::ulong_attribute(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                       CK_ATTRIBUTE_TYPE type) {
    CK_ULONG v = 0;
    CK_ATTRIBUTE a{type, &v, sizeof v};
    REQUIRE(fns_->C_GetAttributeValue(s, o, &a, 1) == CKR_OK);
    REQUIRE(a.ulValueLen == sizeof v);
    return v;
}

bool LoadedModule::bool_attribute(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) {
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a{type, &v, sizeof v};
    REQUIRE(fns_->C_GetAttributeValue(s, o, &a, 1) == CKR_OK);
    REQUIRE(a.ulValueLen == 1);
    return v == CK_TRUE;
}

CK_RV LoadedModule::try_sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const CK_MECHANISM& m,
                             const Bytes& data, Bytes& sig) {
    CK_MECHANISM mech = m;
    CK_RV rv = fns_->C_SignInit(s, &mech, key);
    if (rv != CKR_OK) return rv;
    CK_ULONG len = 0;
    rv = fns_->C_Sign(s, const_cast<uint8_t*>(data.data()), data.size(), nullptr, &len);
    if (rv != CKR_OK) return rv;
    sig.assign(len, 0);
    rv = fns_->C_Sign(s, const_cast<uint8_t*>(data.data()), data.size(), sig.data(), &len);
    if (rv == CKR_OK) sig.resize(len);
    return rv;
}

Bytes LoadedModule::sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const CK_MECHANISM& m,
                         const Bytes& data) {
    Bytes sig;
    const CK_RV rv = try_sign(s, key, m, data, sig);
    INFO("mechanism 0x" << std::hex << m.mechanism << " rv 0x" << rv);
    REQUIRE(rv == CKR_OK);
    return sig;
}

Bytes LoadedModule::sign_multipart(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const CK_MECHANISM& m,
                                   const Bytes& data, size_t chunk) {
    CK_MECHANISM mech = m;
    INFO("mechanism 0x" << std::hex << m.mechanism);
    REQUIRE(fns_->C_SignInit(s, &mech, key) == CKR_OK);
    for (size_t off = 0; off < data.size(); off += chunk) {
        const size_t n = std::min(chunk, data.size() - off);
        REQUIRE(fns_->C_SignUpdate(s, const_cast<uint8_t*>(data.data()) + off, n) == CKR_OK);
    }
    CK_ULONG len = 0;
    REQUIRE(fns_->C_SignFinal(s, nullptr, &len) == CKR_OK);
    Bytes sig(len);
    REQUIRE(fns_->C_SignFinal(s, sig.data(), &len) == CKR_OK);
    sig.resize(len);
    return sig;
}

// --- mbedTLS ----------------------------------------------------------------------------------

Bytes digest(Hash h, const Bytes& data) {
    const mbedtls_md_info_t* info = mbedtls_md_info_from_type(md(h));
    Bytes out(mbedtls_md_get_size(info));
    if (mbedtls_md(info, data.data(), data.size(), out.data()) != 0)
        throw std::runtime_error("mbedtls_md");
    return out;
}

Bytes digest_info(Hash h, const Bytes& hash) {
    // The DER prefixes of RFC 8017 §9.2, note 1.
    static const Bytes kSha1{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                             0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
    static const Bytes kSha256{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                               0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    static const Bytes kSha384{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                               0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
    static const Bytes kSha512{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                               0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};
    Bytes out = h == Hash::Sha1     ? kSha1
                : h == Hash::Sha256 ? kSha256
                : h == Hash::Sha384 ? kSha384
                                    : kSha512;
    out.insert(out.end(), hash.begin(), hash.end());
    return out;
}

bool ecdsa_verifies(const Bytes& spki, const Bytes& hash, const Bytes& raw) {
    Pk pk(spki);
    if (mbedtls_pk_get_type(&pk.ctx) != MBEDTLS_PK_ECKEY || raw.empty() || raw.size() % 2 != 0)
        return false;
    mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk.ctx);
    if (raw.size() != 2 * mbedtls_mpi_size(&ec->grp.N)) return false;
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    const size_t half = raw.size() / 2;
    bool ok = mbedtls_mpi_read_binary(&r, raw.data(), half) == 0 &&
              mbedtls_mpi_read_binary(&s, raw.data() + half, half) == 0 &&
              mbedtls_ecdsa_verify(&ec->grp, hash.data(), hash.size(), &ec->Q, &r, &s) == 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ok;
}

bool rsa_pkcs1_verifies(const Bytes& spki, Hash h, const Bytes& hash, const Bytes& sig) {
    Pk pk(spki);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    if (sig.size() != mbedtls_rsa_get_len(rsa)) return false;
    return mbedtls_rsa_rsassa_pkcs1_v15_verify(rsa, nullptr, nullptr, MBEDTLS_RSA_PUBLIC, md(h),
                                               static_cast<unsigned>(hash.size()), hash.data(),
                                               sig.data()) == 0;
}

bool rsa_pkcs1_raw_verifies(const Bytes& spki, const Bytes& data, const Bytes& sig) {
    Pk pk(spki);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    if (sig.size() != mbedtls_rsa_get_len(rsa)) return false;
    return mbedtls_rsa_rsassa_pkcs1_v15_verify(rsa, nullptr, nullptr, MBEDTLS_RSA_PUBLIC,
                                               MBEDTLS_MD_NONE, static_cast<unsigned>(data.size()),
                                               data.data(), sig.data()) == 0;
}

bool rsa_pss_verifies(const Bytes& spki, Hash h, const Bytes& hash, const Bytes& sig) {
    Pk pk(spki);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    if (sig.size() != mbedtls_rsa_get_len(rsa)) return false;
    return mbedtls_rsa_rsassa_pss_verify_ext(rsa, nullptr, nullptr, MBEDTLS_RSA_PUBLIC, md(h),
                                             static_cast<unsigned>(hash.size()), hash.data(), md(h),
                                             static_cast<int>(hash.size()), sig.data()) == 0;
}

Bytes rsa_oaep_encrypt(const Bytes& spki, Hash h, const Bytes& plaintext) {
    Pk pk(spki);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md(h));
    Bytes out(mbedtls_rsa_get_len(rsa));
    if (mbedtls_rsa_rsaes_oaep_encrypt(rsa, random_bytes, nullptr, MBEDTLS_RSA_PUBLIC, nullptr, 0,
                                       plaintext.size(), plaintext.data(), out.data()) != 0)
        throw std::runtime_error("OAEP encryption failed");
    return out;
}

}  // namespace keychaind::test
