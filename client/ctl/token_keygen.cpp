// Key pairs made inside a PKCS#11 token through p11-kit.
#include "token_keygen.h"

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <sys/random.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "ctl.h"
#include "keychain/client.h"

namespace keychain::ctl {

namespace {

std::string rv_text(CK_RV rv) {
    const char* m = p11_kit_strerror(rv);
    char code[32];
    snprintf(code, sizeof code, "0x%08lx", static_cast<unsigned long>(rv));
    return std::string(m != nullptr ? m : "") + " (" + code + ")";
}

void check_rv(CK_RV rv, const std::string& what) {
    if (rv != CKR_OK) throw CtlError(kExitDaemon, what + " failed: " + rv_text(rv));
}

std::string padded(const unsigned char* field, size_t n) {
    std::string s(reinterpret_cast<const char*>(field), n);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

// RFC 7512 percent-encoding: everything outside the unreserved set.
std::string pct(std::string_view bytes) {
    std::string out;
    for (unsigned char c : bytes) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char b[4];
            snprintf(b, sizeof b, "%%%02X", c);
            out += b;
        }
    }
    return out;
}

// DER OIDs of the curves, as CKA_EC_PARAMS holds them.
const std::vector<uint8_t> kP256Params = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                          0xCE, 0x3D, 0x03, 0x01, 0x07};
const std::vector<uint8_t> kP384Params = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};

// DigestInfo prefixes (RFC 8017 section 9.2 note 1): CKM_RSA_PKCS signs the DigestInfo.
const std::vector<uint8_t> kSha256Info = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
const std::vector<uint8_t> kSha384Info = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x02, 0x05, 0x00, 0x04, 0x30};

struct PkContext {
    mbedtls_pk_context pk;
    PkContext() { mbedtls_pk_init(&pk); }
    ~PkContext() { mbedtls_pk_free(&pk); }
    PkContext(const PkContext&) = delete;
    PkContext& operator=(const PkContext&) = delete;
    std::vector<uint8_t> spki() {
        std::vector<uint8_t> buf(4096);
        const int n = mbedtls_pk_write_pubkey_der(&pk, buf.data(), buf.size());
        if (n < 0) throw CtlError(kExitDaemon, "the token's public key cannot be encoded");
        return {buf.end() - n, buf.end()};
    }
};

// CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 2.40); some tokens give the raw
// point. Either way: the uncompressed point.
std::vector<uint8_t> ec_point(const std::vector<uint8_t>& attr) {
    if (attr.size() > 2 && attr[0] == 0x04) {
        unsigned char* p = const_cast<unsigned char*>(attr.data());
        size_t len = 0;
        if (mbedtls_asn1_get_tag(&p, attr.data() + attr.size(), &len, MBEDTLS_ASN1_OCTET_STRING) ==
                0 &&
            p + len == attr.data() + attr.size())
            return {p, p + len};
    }
    return attr;
}

// ECDSA r || s (PKCS#11) as X.509's SEQUENCE { r INTEGER, s INTEGER }.
std::vector<uint8_t> ecdsa_der(const std::vector<uint8_t>& raw) {
    if (raw.empty() || raw.size() % 2 != 0)
        throw CtlError(kExitDaemon, "the token's ECDSA signature is malformed");
    const size_t half = raw.size() / 2;
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    std::vector<uint8_t> buf(raw.size() + 16);
    unsigned char* const start = buf.data();
    unsigned char* p = start + buf.size();
    int len = 0, rc = mbedtls_mpi_read_binary(&r, raw.data(), half);
    if (rc == 0) rc = mbedtls_mpi_read_binary(&s, raw.data() + half, half);
    const auto add = [&](int n) {
        if (rc == 0 && n < 0) rc = n;
        if (rc == 0) len += n;
    };
    if (rc == 0) add(mbedtls_asn1_write_mpi(&p, start, &s));
    if (rc == 0) add(mbedtls_asn1_write_mpi(&p, start, &r));
    if (rc == 0) add(mbedtls_asn1_write_len(&p, start, static_cast<size_t>(len)));
    if (rc == 0)
        add(mbedtls_asn1_write_tag(&p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    if (rc != 0) throw CtlError(kExitDaemon, "the token's ECDSA signature cannot be encoded");
    return std::vector<uint8_t>(p, start + buf.size());
}

CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const void* value, size_t len) {
    return {type, const_cast<void*>(value), static_cast<CK_ULONG>(len)};
}

}  // namespace

// The loaded modules, initialized; finalized and released at the end.
struct TokenModules {
    CK_FUNCTION_LIST** registered = nullptr;  // p11_kit_modules_load
    CK_FUNCTION_LIST* by_path = nullptr;      // p11_kit_module_load
    std::vector<CK_FUNCTION_LIST*> initialized;

    ~TokenModules() {
        for (auto* m : initialized) p11_kit_module_finalize(m);
        if (registered != nullptr) p11_kit_modules_release(registered);
        if (by_path != nullptr) p11_kit_module_release(by_path);
    }
    void initialize(CK_FUNCTION_LIST* m, const std::string& name) {
        check_rv(p11_kit_module_initialize(m), "initializing PKCS#11 module " + name);
        initialized.push_back(m);
    }
};

struct TokenSession {
    CK_FUNCTION_LIST* fn = nullptr;
    CK_SESSION_HANDLE handle = 0;
    bool logged_in = false;
    std::string token_label;
    std::string token_serial;
    ~TokenSession() {
        if (logged_in) fn->C_Logout(handle);
        fn->C_CloseSession(handle);
    }
};

TokenKeyMaker::TokenKeyMaker(const std::string& token_uri, const std::string& module_spec,
                             const keychaind::SecretBytes& pin)
    : modules_(std::make_unique<TokenModules>()) {
    std::unique_ptr<P11KitUri, void (*)(P11KitUri*)> uri(p11_kit_uri_new(), p11_kit_uri_free);
    const int prc = p11_kit_uri_parse(token_uri.c_str(), P11_KIT_URI_FOR_ANY, uri.get());
    if (prc != P11_KIT_URI_OK)
        usage_error("--token " + token_uri + " is not a pkcs11: URI: " + p11_kit_uri_message(prc));
    if (p11_kit_uri_get_pin_value(uri.get()) != nullptr)
        usage_error("--token: a PIN does not belong in the URI; use --pin-file or --pin-stdin");

    std::string spec = module_spec;
    if (spec.empty() && p11_kit_uri_get_module_path(uri.get()) != nullptr)
        spec = p11_kit_uri_get_module_path(uri.get());
    if (spec.empty() && p11_kit_uri_get_module_name(uri.get()) != nullptr)
        spec = p11_kit_uri_get_module_name(uri.get());

    std::vector<CK_FUNCTION_LIST*> candidates;
    if (spec.find('/') != std::string::npos) {
        if (spec.front() != '/')
            usage_error("--module " + spec + ": give a p11-kit module name or an absolute path");
        modules_->by_path = p11_kit_module_load(spec.c_str(), 0);
        if (modules_->by_path == nullptr)
            throw CtlError(kExitLocalIo,
                           "cannot load PKCS#11 module " + spec + ": " + p11_kit_message());
        modules_->initialize(modules_->by_path, spec);
        candidates.push_back(modules_->by_path);
    } else {
        modules_->registered = p11_kit_modules_load(nullptr, 0);
        if (modules_->registered == nullptr)
            throw CtlError(kExitLocalIo,
                           std::string("cannot load p11-kit's modules: ") + p11_kit_message());
        if (!spec.empty()) {
            CK_FUNCTION_LIST* m = p11_kit_module_for_name(modules_->registered, spec.c_str());
            if (m == nullptr)
                throw CtlError(kExitLocalIo, "p11-kit knows no PKCS#11 module named " + spec);
            modules_->initialize(m, spec);
            candidates.push_back(m);
        } else {
            for (CK_FUNCTION_LIST** m = modules_->registered; *m != nullptr; ++m) {
                // A module that cannot start (a smart-card stack without its daemon) is skipped.
                if (p11_kit_module_initialize(*m) != CKR_OK) continue;
                modules_->initialized.push_back(*m);
                candidates.push_back(*m);
            }
        }
    }

    // Exactly one token may match: generating a key on the wrong one is not undone easily.
    CK_FUNCTION_LIST* found_fn = nullptr;
    CK_SLOT_ID found_slot = 0;
    CK_TOKEN_INFO found_info{};
    int matches = 0;
    for (CK_FUNCTION_LIST* fn : candidates) {
        CK_ULONG n = 0;
        if (fn->C_GetSlotList(CK_TRUE, nullptr, &n) != CKR_OK || n == 0) continue;
        std::vector<CK_SLOT_ID> slots(n);
        if (fn->C_GetSlotList(CK_TRUE, slots.data(), &n) != CKR_OK) continue;
        slots.resize(n);
        for (CK_SLOT_ID slot : slots) {
            CK_TOKEN_INFO info{};
            if (fn->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
            if (!(info.flags & CKF_TOKEN_INITIALIZED) ||
                p11_kit_uri_match_token_info(uri.get(), &info) != 1)
                continue;
            ++matches;
            found_fn = fn;
            found_slot = slot;
            found_info = info;
        }
    }
    if (matches == 0) throw CtlError(kExitDaemon, "no initialized token matches " + token_uri);
    if (matches > 1)
        throw CtlError(kExitUsage, std::to_string(matches) + " tokens match " + token_uri +
                                       ": name one with serial=… (p11tool --list-tokens)");

    session_ = std::make_unique<TokenSession>();
    session_->fn = found_fn;
    session_->token_label = padded(found_info.label, sizeof found_info.label);
    session_->token_serial = padded(found_info.serialNumber, sizeof found_info.serialNumber);
    const std::string who = "token \"" + session_->token_label + "\"";
    CK_SESSION_HANDLE h = 0;
    check_rv(found_fn->C_OpenSession(found_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                     nullptr, &h),
             "opening a session on " + who);
    session_->handle = h;
    const CK_RV lrv = found_fn->C_Login(
        h, CKU_USER, const_cast<CK_UTF8CHAR*>(pin.data()),
        static_cast<CK_ULONG>(std::strlen(reinterpret_cast<const char*>(pin.data()))));
    if (lrv == CKR_PIN_INCORRECT) throw CtlError(kExitDaemon, who + ": the PIN is wrong");
    if (lrv != CKR_USER_ALREADY_LOGGED_IN) {
        check_rv(lrv, "logging in to " + who);
        session_->logged_in = true;
    }
}

TokenKeyMaker::~TokenKeyMaker() = default;

std::vector<uint8_t> TokenKeyMaker::generate(int kc_kind, unsigned rsa_bits,
                                             const std::string& label) {
    label_ = label;
    kc_kind_ = kc_kind;
    id_.resize(16);
    if (getrandom(id_.data(), id_.size(), 0) != static_cast<ssize_t>(id_.size()))
        throw CtlError(kExitLocalIo, "getrandom failed");
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const bool rsa = kc_kind == KC_KIND_RSA;
    CK_ULONG bits = rsa_bits;
    const unsigned char exponent[] = {0x01, 0x00, 0x01};
    const auto& params = kc_kind == KC_KIND_EC_P384 ? kP384Params : kP256Params;

    // Only the usages the daemon has for the key: signing, and for RSA decryption (DECRYPT).
    CK_BBOOL rsa_only = rsa ? CK_TRUE : CK_FALSE;
    std::vector<CK_ATTRIBUTE> pub = {attr(CKA_TOKEN, &yes, sizeof yes),
                                     attr(CKA_VERIFY, &yes, sizeof yes),
                                     attr(CKA_ENCRYPT, &rsa_only, sizeof rsa_only),
                                     attr(CKA_WRAP, &no, sizeof no),
                                     attr(CKA_LABEL, label.data(), label.size()),
                                     attr(CKA_ID, id_.data(), id_.size())};
    // Sensitive, never extractable: the private key exists only inside the token.
    std::vector<CK_ATTRIBUTE> priv = {
        attr(CKA_TOKEN, &yes, sizeof yes),     attr(CKA_PRIVATE, &yes, sizeof yes),
        attr(CKA_SENSITIVE, &yes, sizeof yes), attr(CKA_EXTRACTABLE, &no, sizeof no),
        attr(CKA_SIGN, &yes, sizeof yes),      attr(CKA_DECRYPT, &rsa_only, sizeof rsa_only),
        attr(CKA_UNWRAP, &no, sizeof no),      attr(CKA_LABEL, label.data(), label.size()),
        attr(CKA_ID, id_.data(), id_.size())};
    CK_MECHANISM mech{rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    if (rsa) {
        pub.push_back(attr(CKA_MODULUS_BITS, &bits, sizeof bits));
        pub.push_back(attr(CKA_PUBLIC_EXPONENT, exponent, sizeof exponent));
    } else {
        pub.push_back(attr(CKA_EC_PARAMS, params.data(), params.size()));
    }
    CK_OBJECT_HANDLE pub_h = 0, priv_h = 0;
    check_rv(session_->fn->C_GenerateKeyPair(session_->handle, &mech, pub.data(),
                                             static_cast<CK_ULONG>(pub.size()), priv.data(),
                                             static_cast<CK_ULONG>(priv.size()), &pub_h, &priv_h),
             "C_GenerateKeyPair on token \"" + session_->token_label + "\"");
    private_key_ = priv_h;

    const auto get = [&](CK_ATTRIBUTE_TYPE type) {
        CK_ATTRIBUTE a{type, nullptr, 0};
        check_rv(session_->fn->C_GetAttributeValue(session_->handle, pub_h, &a, 1),
                 "reading the new public key");
        std::vector<uint8_t> v(a.ulValueLen);
        a.pValue = v.data();
        check_rv(session_->fn->C_GetAttributeValue(session_->handle, pub_h, &a, 1),
                 "reading the new public key");
        v.resize(a.ulValueLen);
        return v;
    };
    PkContext pk;
    if (rsa) {
        const auto n = get(CKA_MODULUS);
        const auto e = get(CKA_PUBLIC_EXPONENT);
        if (mbedtls_pk_setup(&pk.pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0 ||
            mbedtls_rsa_import_raw(mbedtls_pk_rsa(pk.pk), n.data(), n.size(), nullptr, 0, nullptr,
                                   0, nullptr, 0, e.data(), e.size()) != 0 ||
            mbedtls_rsa_complete(mbedtls_pk_rsa(pk.pk)) != 0)
            throw CtlError(kExitDaemon, "the token's new RSA public key does not parse");
    } else {
        const auto point = ec_point(get(CKA_EC_POINT));
        mbedtls_ecp_keypair* ec = nullptr;
        if (mbedtls_pk_setup(&pk.pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
            (ec = mbedtls_pk_ec(pk.pk)) == nullptr ||
            mbedtls_ecp_group_load(&ec->grp, kc_kind == KC_KIND_EC_P384
                                                 ? MBEDTLS_ECP_DP_SECP384R1
                                                 : MBEDTLS_ECP_DP_SECP256R1) != 0 ||
            mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, point.data(), point.size()) != 0)
            throw CtlError(kExitDaemon, "the token's new EC public key does not parse");
    }
    return pk.spki();
}

std::vector<uint8_t> TokenKeyMaker::sign(const SignatureAlgorithm& alg,
                                         const std::vector<uint8_t>& hash) {
    std::vector<uint8_t> input;
    if (alg.rsa) {
        input = alg.md == MBEDTLS_MD_SHA384 ? kSha384Info : kSha256Info;
        input.insert(input.end(), hash.begin(), hash.end());
    } else {
        input = hash;
    }
    CK_MECHANISM mech{alg.rsa ? CKM_RSA_PKCS : CKM_ECDSA, nullptr, 0};
    auto* fn = session_->fn;
    check_rv(fn->C_SignInit(session_->handle, &mech, private_key_), "C_SignInit");
    CK_ULONG len = 0;
    check_rv(fn->C_Sign(session_->handle, input.data(), static_cast<CK_ULONG>(input.size()),
                        nullptr, &len),
             "C_Sign");
    std::vector<uint8_t> sig(len);
    check_rv(fn->C_Sign(session_->handle, input.data(), static_cast<CK_ULONG>(input.size()),
                        sig.data(), &len),
             "C_Sign");
    sig.resize(len);
    return alg.rsa ? sig : ecdsa_der(sig);
}

void TokenKeyMaker::store_certificate(const std::vector<uint8_t>& der) {
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der.data(), der.size()) != 0) {
        mbedtls_x509_crt_free(&crt);
        throw CtlError(kExitLocalIo, "the new certificate does not parse");
    }
    const std::vector<uint8_t> subject(crt.subject_raw.p, crt.subject_raw.p + crt.subject_raw.len);
    mbedtls_x509_crt_free(&crt);
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    std::vector<CK_ATTRIBUTE> a = {attr(CKA_CLASS, &cls, sizeof cls),
                                   attr(CKA_CERTIFICATE_TYPE, &type, sizeof type),
                                   attr(CKA_TOKEN, &yes, sizeof yes),
                                   attr(CKA_PRIVATE, &no, sizeof no),
                                   attr(CKA_LABEL, label_.data(), label_.size()),
                                   attr(CKA_ID, id_.data(), id_.size()),
                                   attr(CKA_SUBJECT, subject.data(), subject.size()),
                                   attr(CKA_VALUE, der.data(), der.size())};
    CK_OBJECT_HANDLE h = 0;
    check_rv(session_->fn->C_CreateObject(session_->handle, a.data(),
                                          static_cast<CK_ULONG>(a.size()), &h),
             "storing the certificate on token \"" + session_->token_label + "\"");
}

std::string TokenKeyMaker::key_uri() const {
    std::string id_hex;
    for (uint8_t b : id_) {
        char h[4];
        snprintf(h, sizeof h, "%%%02X", b);
        id_hex += h;
    }
    return "pkcs11:token=" + pct(session_->token_label) + ";serial=" + pct(session_->token_serial) +
           ";object=" + pct(label_) + ";id=" + id_hex + ";type=private";
}

}  // namespace keychain::ctl
