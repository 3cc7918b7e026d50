// keygen: a new TLS identity (RSA or EC key pair, optionally a self-signed certificate) written as
// a .4DKeyChain privateKey entry, made locally without the daemon.
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>

#include "core/key_id.h"
#include "core/secret_bytes.h"
#include "ctl.h"
#include "file_io.h"
#include "secret_input.h"
#include "text_format.h"
#include "token_keygen.h"
#include "x509_names.h"
#include "x509_writer.h"

namespace keychain::ctl {

namespace {

struct KeygenOptions {
    std::string type;
    std::string out;
    std::string name;
    bool self_signed = false;
    std::string subject;
    std::vector<std::string> sans;
    unsigned days = 365;
    std::string token;   // --token URI: generate inside that token instead of a file
    std::string module;  // --module NAME|PATH
    SecretSource pin;    // --pin-file / --pin-stdin (else asked on the terminal)
};

struct KeyType {
    bool rsa = false;
    unsigned rsa_bits = 0;
    mbedtls_ecp_group_id curve = MBEDTLS_ECP_DP_NONE;
    int kc_kind() const {
        return rsa                                 ? KC_KIND_RSA
               : curve == MBEDTLS_ECP_DP_SECP384R1 ? KC_KIND_EC_P384
                                                   : KC_KIND_EC_P256;
    }
};

KeyType parse_type(std::string t) {
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    if (t == "rsa:2048") return {true, 2048, MBEDTLS_ECP_DP_NONE};
    if (t == "rsa:3072") return {true, 3072, MBEDTLS_ECP_DP_NONE};
    if (t == "rsa:4096") return {true, 4096, MBEDTLS_ECP_DP_NONE};
    if (t == "ec:p256") return {false, 0, MBEDTLS_ECP_DP_SECP256R1};
    if (t == "ec:p384") return {false, 0, MBEDTLS_ECP_DP_SECP384R1};
    usage_error("--type " + t + ": give rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384");
}

bool has_keychain_extension(const std::string& path) {
    constexpr std::string_view kExtension = ".4DKeyChain";
    if (path.size() < kExtension.size()) return false;
    return std::equal(kExtension.begin(), kExtension.end(),
                      path.end() - static_cast<long>(kExtension.size()), [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                      });
}

void check(int rc, const char* what) {
    if (rc != 0)
        throw CtlError(
            kExitLocalIo, std::string(what) + " failed (mbedTLS error -0x" + [rc] {
                char b[16];
                snprintf(b, sizeof b, "%04x", static_cast<unsigned>(-rc));
                return std::string(b);
            }() + ")");
}

// The key pair and the random generator that made it; mbedTLS wipes both when they are freed.
class KeyPair {
  public:
    explicit KeyPair(const KeyType& type) {
        mbedtls_entropy_init(&entropy_);
        mbedtls_ctr_drbg_init(&drbg_);
        mbedtls_pk_init(&pk_);
        static const unsigned char kPers[] = "keychainctl keygen";
        check(mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, kPers, sizeof kPers),
              "seeding the DRBG");
        if (type.rsa) {
            check(mbedtls_pk_setup(&pk_, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)),
                  "mbedtls_pk_setup");
            check(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk_), mbedtls_ctr_drbg_random, &drbg_,
                                      type.rsa_bits, 65537),
                  "RSA key generation");
        } else {
            check(mbedtls_pk_setup(&pk_, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)),
                  "mbedtls_pk_setup");
            check(mbedtls_ecp_gen_key(type.curve, mbedtls_pk_ec(pk_), mbedtls_ctr_drbg_random,
                                      &drbg_),
                  "EC key generation");
        }
    }
    ~KeyPair() {
        mbedtls_pk_free(&pk_);
        mbedtls_ctr_drbg_free(&drbg_);
        mbedtls_entropy_free(&entropy_);
    }
    KeyPair(const KeyPair&) = delete;
    KeyPair& operator=(const KeyPair&) = delete;

    mbedtls_ctr_drbg_context* drbg() { return &drbg_; }

    std::vector<uint8_t> sign(mbedtls_md_type_t md, const std::vector<uint8_t>& hash) {
        std::vector<uint8_t> sig(MBEDTLS_PK_SIGNATURE_MAX_SIZE);
        size_t len = 0;
        check(mbedtls_pk_sign(&pk_, md, hash.data(), hash.size(), sig.data(), &len,
                              mbedtls_ctr_drbg_random, &drbg_),
              "signing the certificate");
        sig.resize(len);
        return sig;
    }

    std::vector<uint8_t> spki() {
        std::vector<uint8_t> buf(4096);
        const int n = mbedtls_pk_write_pubkey_der(&pk_, buf.data(), buf.size());
        if (n < 0) check(n, "encoding the public key");
        return {buf.end() - n, buf.end()};
    }

    // The private key as PEM (PKCS#1 or SEC1), in locked memory; NUL excluded.
    keychaind::SecretBytes private_pem() {
        keychaind::SecretBytes pem(16 * 1024);
        check(mbedtls_pk_write_key_pem(&pk_, pem.data(), pem.size()), "encoding the private key");
        pem.truncate(std::strlen(reinterpret_cast<const char*>(pem.data())));
        return pem;
    }

  private:
    mbedtls_entropy_context entropy_;
    mbedtls_ctr_drbg_context drbg_;
    mbedtls_pk_context pk_;
};

// A self-signed certificate for the key (x509_writer.h says what it holds), DER. `sign` makes
// the signature over a digest: the local key, or the token with --token.
template <class Sign>
std::vector<uint8_t> self_signed_certificate(const std::vector<uint8_t>& spki, int kc_kind,
                                             const KeygenOptions& o, const Sign& sign,
                                             std::span<const uint8_t> serial_random) {
    const SubjectName subject(o.subject.empty()
                                  ? "CN=" + (o.name.empty() ? std::string("keychaind") : o.name)
                                  : o.subject);
    const SignatureAlgorithm alg = signature_algorithm_for(kc_kind);
    CertificateFields f;
    f.subject = &subject;
    f.spki = spki;
    f.san_der = subject_alt_names_der(o.sans);
    f.serial.assign(serial_random.begin(), serial_random.end());
    f.serial[0] = static_cast<uint8_t>((f.serial[0] & 0x7f) | 0x40);  // positive, full length
    const std::time_t now = std::time(nullptr);
    f.not_before = now - 300;  // a little clock skew
    f.not_after = now + static_cast<std::time_t>(o.days) * 86400;
    const auto tbs = self_signed_tbs(f, alg);
    const auto hash = digest(alg.md, tbs);
    const auto signature = sign(alg, hash);
    check_signature(spki, alg, hash, signature);
    return signed_structure(tbs, alg, signature);
}

// The .4DKeyChain entry, assembled in locked memory: the private key never passes through a
// std::string. PEM holds no character JSON must escape but the newline.
class EntryText {
  public:
    void append(std::string_view s) {
        reserve(s.size());
        std::memcpy(buf_.data() + used_, s.data(), s.size());
        used_ += s.size();
    }
    void append_json_string(std::string_view s) {
        append("\"");
        for (char c : s) {
            if (c == '\n') {
                append("\\n");
            } else if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
                throw CtlError(kExitLocalIo, "unexpected character in PEM output");
            } else {
                reserve(1);
                buf_.data()[used_++] = static_cast<uint8_t>(c);
            }
        }
        append("\"");
    }
    std::span<const uint8_t> bytes() const { return {buf_.data(), used_}; }

  private:
    void reserve(size_t more) {
        if (used_ + more <= buf_.size()) return;
        keychaind::SecretBytes bigger(std::max<size_t>(buf_.size() * 2, used_ + more + 1024));
        if (used_ != 0) std::memcpy(bigger.data(), buf_.data(), used_);
        buf_ = std::move(bigger);
    }
    keychaind::SecretBytes buf_;
    size_t used_ = 0;
};

// --token: the pair is made by the token and stays there; the certificate, if any, is signed by
// the token and stored beside the key (same CKA_ID and label), where the daemon's token driver
// finds both.
void run_token_keygen(const CommonOptions& common, KeygenOptions& o, const KeyType& type) {
    if (o.name.empty()) usage_error("--token needs --name: the key's CKA_LABEL");
    if (sources_given(o.pin) > 1) usage_error("give --pin-file or --pin-stdin, not both");
    const keychaind::SecretBytes pin =
        sources_given(o.pin) == 1 ? read_secret_text(o.pin, "PIN")
                                  : read_secret_interactive("PIN for " + o.token + ": ", "PIN");
    TokenKeyMaker maker(o.token, o.module, pin);
    const auto spki = maker.generate(type.kc_kind(), type.rsa_bits, o.name);
    const std::string id = keychaind::KeyId::for_public_key(spki).hex();
    std::string cert;
    if (o.self_signed) {
        unsigned char serial[16];
        if (getrandom(serial, sizeof serial, 0) != static_cast<ssize_t>(sizeof serial))
            throw CtlError(kExitLocalIo, "getrandom failed");
        const auto der = self_signed_certificate(
            spki, type.kc_kind(), o,
            [&maker](const SignatureAlgorithm& alg, const std::vector<uint8_t>& hash) {
                return maker.sign(alg, hash);
            },
            serial);
        maker.store_certificate(der);
        cert = pem("CERTIFICATE", der);
    }
    if (common.json) {
        nlohmann::json j = {{"key_id", id}, {"type", o.type}, {"token_key", maker.key_uri()}};
        if (!cert.empty()) j["certificate_pem"] = cert;
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << id << "\n";
    }
}

void run_keygen(const CommonOptions& common, KeygenOptions& o) {
    const KeyType type = parse_type(o.type);
    if (!o.self_signed && (!o.subject.empty() || !o.sans.empty()))
        usage_error(
            "--subject and --san describe the certificate: add --self-signed (or use csr later)");
    if (o.days == 0 || o.days > 36500) usage_error("--days is 1..36500");
    if (o.out.empty() == o.token.empty())
        usage_error("give --out FILE or --token URI (one of them)");
    if (!o.token.empty()) return run_token_keygen(common, o, type);
    if (!o.module.empty() || sources_given(o.pin) != 0)
        usage_error("--module, --pin-file and --pin-stdin go with --token");
    if (!has_keychain_extension(o.out))
        std::cerr << "keychainctl: note: keychaind reads only files named *.4DKeyChain\n";

    KeyPair key(type);
    const auto spki = key.spki();
    const std::string id = keychaind::KeyId::for_public_key(spki).hex();
    std::string cert;
    if (o.self_signed) {
        unsigned char serial[16];
        check(mbedtls_ctr_drbg_random(key.drbg(), serial, sizeof serial), "random serial");
        cert = pem("CERTIFICATE",
                   self_signed_certificate(
                       spki, type.kc_kind(), o,
                       [&key](const SignatureAlgorithm& alg, const std::vector<uint8_t>& hash) {
                           return key.sign(alg.md, hash);
                       },
                       serial));
    }

    EntryText entry;
    entry.append("{\"privateKey\": ");
    entry.append_json_string(key.private_pem().view());
    if (!cert.empty()) {
        entry.append(", \"certificate\": ");
        entry.append(nlohmann::json(cert).dump());
    }
    if (!o.name.empty()) {
        entry.append(", \"name\": ");
        entry.append(nlohmann::json(o.name).dump());
    }
    entry.append("}\n");
    write_new_file(o.out, entry.bytes());

    if (common.json) {
        nlohmann::json j = {{"file", o.out}, {"key_id", id}, {"type", o.type}};
        if (!cert.empty()) j["certificate_pem"] = cert;
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << id << "\n";
    }
}

}  // namespace

void add_keygen_command(CLI::App& app, CommonOptions& common, Action& action) {
    auto o = std::make_shared<KeygenOptions>();
    auto* sub = app.add_subcommand(
        "keygen", "Make a new TLS identity (key pair) as a .4DKeyChain file (no daemon needed)");
    sub->add_option("--type", o->type, "rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384")
        ->required()
        ->type_name("TYPE");
    sub->add_option("--out", o->out,
                    "the new file, e.g. /media/stick/web.4DKeyChain (mode 0600, never overwritten)")
        ->type_name("FILE");
    sub->add_option("--token", o->token,
                    "generate inside this PKCS#11 token instead (pkcs11:token=…): sensitive, never "
                    "extractable")
        ->type_name("URI");
    sub->add_option("--module", o->module,
                    "with --token: the p11-kit module name or absolute path (default: the URI's, "
                    "else every registered module)")
        ->type_name("NAME|PATH");
    sub->add_option("--pin-file", o->pin.file, "with --token: read the user PIN from FILE")
        ->type_name("FILE");
    sub->add_flag("--pin-stdin", o->pin.stdin_,
                  "with --token: read the user PIN from standard input");
    sub->add_option("--name", o->name, "the key's label (the entry's \"name\")")->type_name("N");
    sub->add_flag("--self-signed", o->self_signed, "add a self-signed certificate for the key");
    sub->add_option("--subject", o->subject, "with --self-signed: the subject (default CN=<name>)")
        ->type_name("DN");
    sub->add_option("--san", o->sans,
                    "with --self-signed: a subjectAltName, DNS:name, IP:address… (repeatable)")
        ->type_name("TYPE:VALUE");
    sub->add_option("--days", o->days, "with --self-signed: days of validity (default 365)")
        ->type_name("N");
    sub->add_flag("--json", common.json, "machine-readable output (JSON)");
    sub->callback([&, o] { action = [&, o] { run_keygen(common, *o); }; });
}

}  // namespace keychain::ctl
