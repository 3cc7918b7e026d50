// Integration: PKCS#11 tokens (SoftHSM2, and SoftHSM2 behind the fault module) in a real keychaind.
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <keychain/client.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/crypto_backend.h"
#include "core/error.h"
#include "daemon_fixture.h"
#include "fault_control.h"
#include "soft_token.h"
#include "test_bytes.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using wire::Opcode;
using wire::Tag;

namespace {

constexpr const char* kFileKekHex = "0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff";

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<uint8_t> random_bytes(size_t n) {
    std::vector<uint8_t> v(n);
    keychaind::test::random_bytes(nullptr, v.data(), v.size());
    return v;
}

std::vector<uint8_t> to_vector(const keychain::SecretBuffer& b) { return {b.data(), b.data() + b.size()}; }

size_t count_occurrences(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
    return n;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Log lines at warning or error level (the daemon's "… keychaind warning: …" format).
std::vector<std::string> warning_lines(const std::string& log) {
    std::vector<std::string> out;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);)
        if (line.find(" keychaind error: ") != std::string::npos || line.find(" keychaind warning: ") != std::string::npos)
            out.push_back(line);
    return out;
}

bool wait_until(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
    const auto deadline = Clock::now() + timeout;
    do {
        if (done()) return true;
        std::this_thread::sleep_for(25ms);
    } while (Clock::now() < deadline);
    return done();
}

// ---- signature checks with mbedTLS, independent of the daemon's code ----

struct PublicKey {
    mbedtls_pk_context pk;
    explicit PublicKey(const std::vector<uint8_t>& spki) {
        mbedtls_pk_init(&pk);
        if (mbedtls_pk_parse_public_key(&pk, spki.data(), spki.size()) != 0)
            throw std::runtime_error("GET_PUBLIC's key does not parse");
    }
    ~PublicKey() { mbedtls_pk_free(&pk); }
    PublicKey(const PublicKey&) = delete;
    PublicKey& operator=(const PublicKey&) = delete;
};

// The input SIGN takes for `alg`: a digest, or for rsa-pkcs1-raw a SHA-256 DigestInfo.
std::vector<uint8_t> sign_input(SignAlgorithm alg) {
    if (alg != SignAlgorithm::RsaPkcs1Raw) return random_bytes(sign_algorithm_digest_size(alg));
    static constexpr uint8_t kPrefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                          0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    std::vector<uint8_t> di = random_bytes(sizeof kPrefix + 32);
    std::copy(std::begin(kPrefix), std::end(kPrefix), di.begin());
    return di;
}

std::vector<uint8_t> oaep_encrypt(const std::vector<uint8_t>& spki, mbedtls_md_type_t md,
                                  const std::vector<uint8_t>& plaintext) {
    PublicKey k(spki);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(k.pk);
    mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md);
    std::vector<uint8_t> ct(mbedtls_rsa_get_len(rsa));
    if (mbedtls_rsa_rsaes_oaep_encrypt(rsa, keychaind::test::random_bytes, nullptr, MBEDTLS_RSA_PUBLIC, nullptr, 0,
                                       plaintext.size(), plaintext.data(), ct.data()) != 0)
        throw std::runtime_error("OAEP encryption failed");
    return ct;
}

// ---- a daemon with one token ----

struct TokenConfig {
    std::string name = "web";
    std::string module = "softhsm2";
    std::vector<std::string> module_paths;
    std::string uri;                 // default: the SoftToken's
    std::optional<std::string> pin;  // written to a root-owned 0600 pin_file; nullopt: PROVIDE it
    std::vector<std::string> keys;   // default: every key on the token
    int sessions = 4;
    int poll_ms = 300;
    int call_timeout_ms = 5000;
};

std::string toml_string(const std::string& s) { return nlohmann::json(s).dump(); }

std::string toml_array(const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_string(v[i]);
    return out + "]";
}

// [keys] with keys/test.4DKeyChain (a file KEK "file-kek" and an EC identity "file-ec", the keys
// that must keep working whatever the token does), then [pkcs11] with one token.
std::string config_tail(const TempDir& dir, const SoftToken& token, const TokenConfig& c) {
    const std::string keys_dir = dir.file("keys");
    mkdir(keys_dir.c_str(), 0700);
    const auto file_ec = make_identity(KeyKind::EcP256, 0, "file ec");
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "file-kek"}, {"encodedKey", kFileKekHex}});
    j.push_back({{"name", "file-ec"}, {"privateKey", file_ec.key_pem_pkcs8}});
    write_file(keys_dir + "/test.4DKeyChain", j.dump());

    std::ostringstream t;
    t << "[audit]\ntarget = \"file\"\nfile = " << toml_string(dir.file("audit.log")) << "\n\n";
    t << "[keys]\ndirectories = [" << toml_string(keys_dir) << "]\n\n"
      << "[pkcs11]\nmodule_paths = " << toml_array(c.module_paths) << "\npoll_ms = " << c.poll_ms
      << "\ncall_timeout_ms = " << c.call_timeout_ms << "\n\n"
      << "[[pkcs11.token]]\nname = " << toml_string(c.name) << "\nmodule = " << toml_string(c.module)
      << "\nuri = " << toml_string(c.uri.empty() ? token.uri() : c.uri) << "\nsessions = " << c.sessions << "\n";
    if (!c.keys.empty()) t << "keys = " << toml_array(c.keys) << "\n";
    if (c.pin) {
        const std::string pin_file = dir.file(c.name + ".pin");
        write_file(pin_file, *c.pin);  // root-owned (the tests run as root), mode 0600
        t << "pin_file = " << toml_string(pin_file) << "\n";
    }
    return t.str();
}

// Prints the tail of a daemon's log when a REQUIRE failed inside a test (or always, with
// KEYCHAIND_TEST_SHOW_LOG=1 in the environment).
void dump_log_if_failing(const DaemonProcess& d, const char* what) {
    const char* show = std::getenv("KEYCHAIND_TEST_SHOW_LOG");
    if (std::uncaught_exceptions() == 0 && (show == nullptr || *show != '1')) return;
    std::string log = d.log();
    if (log.size() > 6000) log = "…" + log.substr(log.size() - 6000);
    std::fprintf(stderr, "---- %s log (%s) ----\n%s---- end of log ----\n", what, d.config_path().c_str(),
                 log.c_str());
}

struct TokenDaemon {
    TempDir dir{"keychaind-token"};
    std::unique_ptr<DaemonProcess> daemon;

    TokenDaemon(const SoftToken& token, const TokenConfig& c)
        : daemon(std::make_unique<DaemonProcess>(dir.path(), config_tail(dir, token, c))) {}
    ~TokenDaemon() { dump_log_if_failing(*daemon, "keychaind"); }
    TokenDaemon(const TokenDaemon&) = delete;
    TokenDaemon& operator=(const TokenDaemon&) = delete;

    const std::string& socket() const { return daemon->socket_path(); }
    std::string log() const { return daemon->log(); }
    std::string audit() const { return read_file_text(dir.file("audit.log")); }
    keychain::Client client(uint32_t timeout_ms = 20000) const {
        keychain::Client c(socket());
        c.set_timeout(timeout_ms);
        return c;
    }
    // Waits until every key is present (the token is read in the background); fails with the log.
    void wait_for(const std::vector<std::string>& ids, uint32_t timeout_ms = 10000) const {
        auto c = client();
        for (const auto& id : ids) {
            try {
                c.wait(id, timeout_ms);
            } catch (const keychain::Error& e) {
                FAIL("key " << id << " did not appear: " << e.what() << "\ndaemon log:\n" << log());
            }
        }
    }
};

// A daemon with a software KEK holding `kek_hex` (and nothing else), for cross-checks.
struct SoftwareKekDaemon {
    TempDir dir{"keychaind-softkek"};
    std::unique_ptr<DaemonProcess> daemon;
    explicit SoftwareKekDaemon(const std::string& kek_hex) {
        const std::string keys_dir = dir.file("keys");
        mkdir(keys_dir.c_str(), 0700);
        nlohmann::json j = nlohmann::json::array({{{"name", "soft-kek"}, {"encodedKey", kek_hex}}});
        write_file(keys_dir + "/kek.4DKeyChain", j.dump());
        daemon = std::make_unique<DaemonProcess>(dir.path(),
                                                 "[keys]\ndirectories = [" + toml_string(keys_dir) + "]\n");
    }
    ~SoftwareKekDaemon() { dump_log_if_failing(*daemon, "software-KEK keychaind"); }
    keychain::Client client() const { return keychain::Client(daemon->socket_path()); }
};

int error_code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const keychain::Error& e) {
        return e.code();
    }
    return 0;
}

std::string code_name(int code) { return code == 0 ? "OK" : kc_code_name(code); }

// SIGN with the token's EC key over a random digest, the signature checked against the token's own
// public key: 0, or the error code (KC_ERR_INTERNAL for a signature that does not verify).
int sign_with_token_ec(keychain::Client& c, const SoftToken& token) {
    return error_code_of([&] {
        const auto digest = random_bytes(32);
        const auto sig = c.sign(SoftToken::kEcLabel, static_cast<int>(SignAlgorithm::EcdsaSha256), digest);
        if (!signature_verifies(token.ec().spki_der, SignAlgorithm::EcdsaSha256, digest, sig))
            throw keychain::Error(KC_ERR_INTERNAL, "bad signature");
    });
}

// Whether the file key "file-ec" signs, checked against `spki` (its GET_PUBLIC key, taken earlier).
bool file_ec_signs(keychain::Client& c, const std::vector<uint8_t>& spki) {
    const auto digest = random_bytes(32);
    return signature_verifies(spki, SignAlgorithm::EcdsaSha256, digest,
                              c.sign("file-ec", static_cast<int>(SignAlgorithm::EcdsaSha256), digest));
}

// Whether LIST_KEYS with absent keys shows key `id`, and shows it absent.
bool listed_absent(keychain::Client& c, const std::string& id) {
    for (const auto& k : c.list_keys(true))
        if (k.id == id) return !k.present;
    return false;
}

// Runs pkcs11-tool on SoftHSM2 (the token's own module, not the daemon's); fails with its output.
void pkcs11_tool(std::vector<std::string> args) {
    args.insert(args.begin(), {"pkcs11-tool", "--module", kSoftHsmModule});
    const auto r = run_command(args);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
}

// A token reached through the fault module's trusted copy, with the right PIN in its pin_file.
TokenConfig fault_config(const FaultModule& fault, const SoftToken& token) {
    TokenConfig c;
    c.module = fault.module();
    c.module_paths = {fault.module()};
    c.pin = token.pin();
    return c;
}

}  // namespace

TEST_CASE("token keys sign with every mechanism and the signatures verify against GET_PUBLIC's key", "[token]") {
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()});
    auto c = d.client();

    // GET_PUBLIC: the SPKI-derived id, the public key and the token's certificate.
    const auto ec_pub = c.get_public(SoftToken::kEcLabel);
    const auto rsa_pub = c.get_public(SoftToken::kRsaLabel);
    CHECK(ec_pub.id == token.ec_key_id());
    CHECK(rsa_pub.id == token.rsa_key_id());
    CHECK(ec_pub.spki == token.ec().spki_der);
    CHECK(rsa_pub.spki == token.rsa().spki_der);
    CHECK(ec_pub.kind == KC_KIND_EC_P256);
    CHECK(rsa_pub.kind == KC_KIND_RSA);
    CHECK(rsa_pub.bits == 2048);
    REQUIRE(ec_pub.certificates.size() >= 1);
    REQUIRE(rsa_pub.certificates.size() >= 1);
    CHECK(ec_pub.certificates[0] == token.ec().cert_der);
    CHECK(rsa_pub.certificates[0] == token.rsa().cert_der);

    struct Case {
        const char* label;
        SignAlgorithm alg;
    };
    const Case cases[] = {
        {SoftToken::kEcLabel, SignAlgorithm::EcdsaSha256},    {SoftToken::kEcLabel, SignAlgorithm::EcdsaSha384},
        {SoftToken::kEcLabel, SignAlgorithm::EcdsaSha512},    {SoftToken::kRsaLabel, SignAlgorithm::RsaPkcs1Sha256},
        {SoftToken::kRsaLabel, SignAlgorithm::RsaPkcs1Sha384}, {SoftToken::kRsaLabel, SignAlgorithm::RsaPkcs1Sha512},
        {SoftToken::kRsaLabel, SignAlgorithm::RsaPkcs1Raw},   {SoftToken::kRsaLabel, SignAlgorithm::RsaPssSha256},
        {SoftToken::kRsaLabel, SignAlgorithm::RsaPssSha384},  {SoftToken::kRsaLabel, SignAlgorithm::RsaPssSha512},
    };
    for (const auto& cs : cases) {
        INFO(cs.label << " " << sign_algorithm_name(cs.alg));
        const auto& spki = std::string(cs.label) == SoftToken::kEcLabel ? ec_pub.spki : rsa_pub.spki;
        auto input = sign_input(cs.alg);
        std::vector<uint8_t> sig;
        try {
            sig = c.sign(cs.label, static_cast<int>(cs.alg), input);
        } catch (const keychain::Error& e) {
            FAIL_CHECK("SIGN answered " << e.what());
            continue;
        }
        CHECK(signature_verifies(spki, cs.alg, input, sig));
        input.front() ^= 1;  // (ECDSA uses only the digest's leading bits of a longer hash)
        CHECK_FALSE(signature_verifies(spki, cs.alg, input, sig));
    }

    SECTION("keys are selected by id as well as by label, and listed with a token source") {
        const auto digest = random_bytes(32);
        CHECK(signature_verifies(ec_pub.spki, SignAlgorithm::EcdsaSha256, digest,
                       c.sign(token.ec_key_id(), static_cast<int>(SignAlgorithm::EcdsaSha256), digest)));
        const auto keys = c.list_keys();
        for (const auto& id : {token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()}) {
            INFO("key " << id);
            auto it = std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.id == id; });
            REQUIRE(it != keys.end());
            CHECK(it->present);
            REQUIRE_FALSE(it->sources.empty());
            CHECK(it->sources[0].rfind("token:pkcs11:", 0) == 0);
        }
        auto aes = std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.id == token.aes_key_id(); });
        CHECK(aes->label == SoftToken::kAesLabel);
        CHECK(aes->kind == KC_KIND_AES256);
        CHECK(error_code_of([&] { c.get_public(SoftToken::kAesLabel); }) == KC_ERR_UNSUPPORTED);
    }
    SECTION("an algorithm the key cannot do is UNSUPPORTED, a wrong digest size BAD_REQUEST") {
        const auto digest = random_bytes(32);
        CHECK(error_code_of([&] { c.sign(SoftToken::kRsaLabel, static_cast<int>(SignAlgorithm::EcdsaSha256), digest); }) ==
              KC_ERR_UNSUPPORTED);
        CHECK(error_code_of([&] { c.sign(SoftToken::kEcLabel, static_cast<int>(SignAlgorithm::RsaPssSha256), digest); }) ==
              KC_ERR_UNSUPPORTED);
        CHECK(error_code_of([&] {
                  c.sign(SoftToken::kEcLabel, static_cast<int>(SignAlgorithm::EcdsaSha256),
                         std::vector<uint8_t>(31, 1));
              }) == KC_ERR_BAD_REQUEST);
    }

    // Signing never made a private key extractable (read through SoftHSM2 in this process).
    for (const char* label : {SoftToken::kEcLabel, SoftToken::kRsaLabel}) {
        INFO(label);
        const auto p = token.key_protection(CKO_PRIVATE_KEY, label);
        CHECK_FALSE(p.extractable);
        CHECK(p.sensitive);
    }
    CHECK_FALSE(token.key_protection(CKO_SECRET_KEY, SoftToken::kAesLabel).extractable);
}

TEST_CASE("token RSA-OAEP DECRYPT returns what was encrypted to GET_PUBLIC's key", "[token]") {
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    TokenDaemon d(token, cfg);
    d.wait_for({token.rsa_key_id()});
    auto c = d.client();
    const auto spki = c.get_public(SoftToken::kRsaLabel).spki;
    struct Case {
        const char* name;
        int alg;
        mbedtls_md_type_t md;
    };
    for (const Case& cs : {Case{"rsa-oaep-sha1", KC_DECRYPT_RSA_OAEP_SHA1, MBEDTLS_MD_SHA1},
                           Case{"rsa-oaep-sha256", KC_DECRYPT_RSA_OAEP_SHA256, MBEDTLS_MD_SHA256}}) {
        INFO(cs.name);
        const auto secret = random_bytes(48);
        const auto ct = oaep_encrypt(spki, cs.md, secret);
        try {
            CHECK(to_vector(c.decrypt(SoftToken::kRsaLabel, cs.alg, ct)) == secret);
        } catch (const keychain::Error& e) {
            FAIL_CHECK("DECRYPT answered " << e.what());
        }
        auto tampered = ct;
        tampered[10] ^= 0x40;
        const int code = error_code_of([&] { c.decrypt(SoftToken::kRsaLabel, cs.alg, tampered); });
        INFO("tampered ciphertext: " << code_name(code));
        CHECK(code != 0);
    }
}

TEST_CASE("envelope operations with a token KEK interoperate with the same key as a software KEK", "[token]") {
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    TokenDaemon hsm(token, cfg);
    SoftwareKekDaemon soft(token.aes_key_hex());
    hsm.wait_for({token.aes_key_id()});
    auto h = hsm.client();
    auto s = soft.client();
    s.wait(token.aes_key_id(), 10000);
    const std::string ctx = "db:orders";

    // The software daemon gives the same id to the same bytes.
    const auto soft_keys = s.list_keys();
    REQUIRE(soft_keys.size() == 1);
    CHECK(soft_keys[0].id == token.aes_key_id());

    SECTION("made by the token (selected by label or by id), unwrapped in software") {
        for (const std::string& kek : {std::string(SoftToken::kAesLabel), token.aes_key_id()}) {
            INFO("KEK selected as " << kek);
            auto dk = h.generate_data_key(kek, ctx);
            CHECK(dk.key.size() == 32);
            CHECK(dk.wrapped.size() == 80);
            CHECK(to_vector(s.unwrap(dk.wrapped, ctx)) == to_vector(dk.key));
            CHECK(to_vector(h.unwrap(dk.wrapped, ctx)) == to_vector(dk.key));
            CHECK(error_code_of([&] { h.unwrap(dk.wrapped, "db:users"); }) == KC_ERR_BAD_REQUEST);
        }
        const auto mine = random_bytes(32);
        const auto wrapped = h.wrap(SoftToken::kAesLabel, mine, ctx);
        CHECK(to_vector(s.unwrap(wrapped, ctx)) == mine);
    }
    SECTION("made in software, unwrapped by the token") {
        auto dk = s.generate_data_key("soft-kek", ctx);
        CHECK(to_vector(h.unwrap(dk.wrapped, ctx)) == to_vector(dk.key));
        const auto mine = random_bytes(24);
        CHECK(to_vector(h.unwrap(s.wrap("soft-kek", mine, ctx), ctx)) == mine);
        auto tampered = dk.wrapped;
        tampered.back() ^= 1;
        CHECK(error_code_of([&] { h.unwrap(tampered, ctx); }) == KC_ERR_BAD_REQUEST);
    }
    SECTION("REWRAP from the token KEK to a file KEK and back") {
        auto dk = h.generate_data_key(SoftToken::kAesLabel, ctx);
        const auto to_file = h.rewrap(dk.wrapped, "file-kek", ctx);
        CHECK(to_vector(h.unwrap(to_file, ctx)) == to_vector(dk.key));
        CHECK(error_code_of([&] { s.unwrap(to_file, ctx); }) != 0);  // the other daemon has no file-kek
        const auto back = h.rewrap(to_file, token.aes_key_id(), ctx);
        CHECK(to_vector(s.unwrap(back, ctx)) == to_vector(dk.key));
        CHECK(to_vector(h.unwrap(back, ctx)) == to_vector(dk.key));
    }
}

TEST_CASE("a wrong PIN is tried once, logged once and never locks the token, and PROVIDE with the right one "
          "brings the keys",
          "[token]") {
    SoftToken token;
    // Through SoftHSM2 itself, and through the fault module, which also counts the C_Login calls.
    for (const bool through_shim : {false, true}) {
        DYNAMIC_SECTION((through_shim ? "fault module" : "softhsm2 registry module")) {
            std::unique_ptr<FaultModule> fault;
            TokenConfig cfg;
            if (through_shim) {
                fault = std::make_unique<FaultModule>();
                cfg = fault_config(*fault, token);
            }
            cfg.pin = "99999";  // wrong
            TokenDaemon d(token, cfg);
            auto c = d.client();

            // One clear error naming the token, and no retries over 3 s (poll_ms is 300).
            const bool logged = wait_until(5s, [&] {
                for (const auto& l : warning_lines(d.log()))
                    if (l.find("web") != std::string::npos) return true;
                return false;
            });
            INFO("daemon log:\n" << d.log());
            REQUIRE(logged);
            std::this_thread::sleep_for(3s);
            std::vector<std::string> pin_lines;
            for (const auto& l : warning_lines(d.log()))
                if (l.find("web") != std::string::npos && lower(l).find("pin") != std::string::npos)
                    pin_lines.push_back(l);
            CHECK(pin_lines.size() == 1);
            for (const auto& l : pin_lines) std::printf("wrong PIN logged as: %s\n", l.c_str());
            if (through_shim) CHECK(count_occurrences(fault->log(), "login CKR_PIN_INCORRECT") == 1);

            // The keys are absent; the token is not locked.
            const auto present = c.list_keys();
            for (const auto& id : {token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()})
                CHECK(std::none_of(present.begin(), present.end(), [&](const auto& k) { return k.id == id; }));
            CHECK(error_code_of([&] {
                      c.sign(SoftToken::kEcLabel, static_cast<int>(SignAlgorithm::EcdsaSha256), random_bytes(32));
                  }) != 0);
            CK_FLAGS flags = token.token_flags();
            CHECK((flags & CKF_USER_PIN_LOCKED) == 0);
            CHECK((flags & CKF_USER_PIN_FINAL_TRY) == 0);

            // PROVIDE: a wrong PIN is DENIED, the right one logs in and the keys come.
            const std::string token_ref = through_shim ? token.uri() : "web";
            auto provide = [&](const std::string& pin) {
                auto b = req(Opcode::Provide);
                b.str(Tag::Pin, pin).str(Tag::TokenUri, token_ref);
                return request(d.socket(), std::move(b));
            };
            auto denied = provide("11111");
            CHECK(denied.error_code() == uint8_t(ErrorCode::Denied));
            flags = token.token_flags();
            CHECK((flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY)) == 0);

            auto ok = provide(token.pin());
            INFO("PROVIDE answered " << int(ok.msg.opcode) << " " << ok.error_message());
            REQUIRE(ok.msg.opcode == ok_opcode(Opcode::Provide));
            CHECK(ok.msg.get_u32(Tag::Count).value_or(0) == 3);
            d.wait_for({token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()}, 5000);
            const auto digest = random_bytes(32);
            CHECK(signature_verifies(token.ec().spki_der, SignAlgorithm::EcdsaSha256, digest,
                           c.sign(SoftToken::kEcLabel, static_cast<int>(SignAlgorithm::EcdsaSha256), digest)));
            // SoftHSM2 clears COUNT_LOW after a successful login.
            CHECK((token.token_flags() & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW)) == 0);
            if (through_shim) {
                CHECK(count_occurrences(fault->log(), "login CKR_PIN_INCORRECT") == 2);
                CHECK(count_occurrences(fault->log(), "login CKR_OK") >= 1);
            }
        }
    }
}

TEST_CASE("a token deleted while the daemon runs answers TOKEN_ERROR, and re-created its keys come back",
          "[token]") {
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id(), token.aes_key_id()});
    auto c = d.client();
    const auto file_spki = c.get_public("file-ec").spki;
    auto sign_ec = [&] { return sign_with_token_ec(c, token); };
    auto file_key_works = [&] { return file_ec_signs(c, file_spki); };
    REQUIRE(sign_ec() == 0);

    token.delete_token();
    const auto t_deleted = Clock::now();
    int code = 0;
    const bool failed = wait_until(10s, [&] { return (code = sign_ec()) != 0; });
    std::printf("token deleted: SIGN failed after %.2f s with %s\n", seconds_since(t_deleted), code_name(code).c_str());
    REQUIRE(failed);
    CHECK(code == KC_ERR_TOKEN_ERROR);
    CHECK(file_key_works());
    CHECK(c.status().key_count >= 2);

    // After the presence poll noticed: still TOKEN_ERROR, and listed as not present.
    std::this_thread::sleep_for(1s);
    CHECK(code_name(sign_ec()) == code_name(KC_ERR_TOKEN_ERROR));
    CHECK(error_code_of([&] { c.generate_data_key(SoftToken::kAesLabel); }) == KC_ERR_TOKEN_ERROR);
    CHECK(wait_until(5s, [&] { return listed_absent(c, token.ec_key_id()); }));
    CHECK(file_key_works());

    const auto t_recreate = Clock::now();
    token.recreate();  // same label, PIN and keys
    const double recreate_s = seconds_since(t_recreate);
    const bool back = wait_until(15s, [&] { return sign_ec() == 0; });
    std::printf("token re-created (softhsm2-util and the import took %.2f s): its EC key signed again %.2f s after "
                "the re-creation began (poll_ms %d)\n",
                recreate_s, seconds_since(t_recreate), cfg.poll_ms);
    REQUIRE(back);
    // The daemon may have opened the token while the import was still going: every key comes.
    d.wait_for({token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()}, 10000);
    std::printf("token re-created: all 3 keys present %.2f s after the re-creation began\n", seconds_since(t_recreate));
    auto dk = c.generate_data_key(SoftToken::kAesLabel);
    CHECK(to_vector(c.unwrap(dk.wrapped)) == to_vector(dk.key));
    for (const auto& k : c.list_keys(true))
        if (k.id == token.ec_key_id()) CHECK(k.present);
    CHECK(file_key_works());

    // The audit log saw the token come, go and come back.
    const std::string audit = d.audit();
    CHECK(count_occurrences(audit, "\"event\":\"token-inserted\"") >= 2);
    CHECK(count_occurrences(audit, "\"event\":\"token-removed\"") >= 1);
    CHECK(count_occurrences(audit, "\"token\":\"" + cfg.name + "\"") >= 3);
}

TEST_CASE("a token whose user PIN is set a while after it was initialized opens once the PIN is there",
          "[token]") {
    // softhsm2-util initializes a token in steps (C_InitToken, then C_InitPIN): a daemon that looks
    // in between finds a token it cannot log in to yet, and its module keeps that view of the token.
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id()});
    auto c = d.client();
    token.delete_token();
    REQUIRE(wait_until(10s, [&] { return listed_absent(c, token.ec_key_id()); }));

    pkcs11_tool({"--init-token", "--slot-index", "0", "--label", token.label(), "--so-pin", token.so_pin()});
    // Long enough for the daemon to see the token, wait its one look, and try to log in.
    const bool tried = wait_until(10s, [&] { return d.log().find("could not be opened") != std::string::npos; });
    CHECK(tried);
    const auto t_pin = Clock::now();
    pkcs11_tool({"--token-label", token.label(), "--init-pin", "--so-pin", token.so_pin(), "--pin", token.pin()});
    token.import_keys();
    const bool back = wait_until(15s, [&] { return sign_with_token_ec(c, token) == 0; });
    std::printf("user PIN set and keys imported: the EC key signed again %.2f s after the PIN was set (poll_ms %d)\n",
                seconds_since(t_pin), cfg.poll_ms);
    REQUIRE(back);
    d.wait_for({token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()}, 10000);
}

TEST_CASE("a key caught half-written has its token reopened, spaced out, until the key is whole, and the other keys "
          "serve meanwhile",
          "[token][fault]") {
    // SoftHSM2 keeps showing an object it caught half-written until it is initialized again; a
    // busy writer can take seconds. The fault module keeps the AES and RSA keys half-written, as
    // SoftHSM2 would show them, until the daemon initializes the module after the fault is disarmed.
    SoftToken token;
    FaultModule fault;
    fault.arm("half-written");
    TokenConfig cfg = fault_config(fault, token);
    cfg.poll_ms = 100;
    // What the daemon reads of a half-written key: every key, or keys chosen by label (a
    // half-written key has none yet, so no selector picks it).
    std::vector<std::string> expected_lines;
    SECTION("every key on the token") {
        expected_lines = {"it has no length (CKA_VALUE_LEN)", "private key \"\" (id none) skipped: it has no CKA_MODULUS"};
    }
    SECTION("keys chosen by label") {
        for (const char* label : {SoftToken::kEcLabel, SoftToken::kRsaLabel, SoftToken::kAesLabel})
            cfg.keys.push_back(std::string("pkcs11:object=") + label);
        expected_lines = {"a secret key with no CKA_ID and no label has no CKA_VALUE_LEN: caught half-written",
                          "a private key with no CKA_ID and no label has no CKA_MODULUS: caught half-written"};
    }
    expected_lines.push_back("a public key with no CKA_ID and no label has no CKA_MODULUS: caught half-written");
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id()});
    auto c = d.client();
    const auto t0 = Clock::now();
    // More reopens than the three the daemon once gave a token (in about a second) before keeping
    // what it had read for good.
    const bool reopened = wait_until(15s, [&] { return count_occurrences(d.log(), "looks unfinished") >= 4; });
    std::printf("half-written AES and RSA keys: 4 reopens in %.2f s (poll_ms %d)\n", seconds_since(t0), cfg.poll_ms);
    REQUIRE(reopened);
    CHECK(fault.log().find("half-written C_GetAttributeValue") != std::string::npos);
    const std::string log = d.log();
    for (const auto& line : expected_lines) CHECK(log.find(line) != std::string::npos);
    // Open between reopens: the whole keys serve.
    CHECK(wait_until(5s, [&] { return sign_with_token_ec(c, token) == 0; }));
    CHECK(error_code_of([&] { c.generate_data_key(SoftToken::kAesLabel); }) != 0);
    const auto keys = c.list_keys(true);
    CHECK(std::none_of(keys.begin(), keys.end(), [&](const auto& k) { return k.id == token.rsa_key_id(); }));

    fault.arm("none");
    const auto t_whole = Clock::now();
    d.wait_for({token.aes_key_id(), token.rsa_key_id()}, 15000);
    std::printf("half-written AES and RSA keys: present %.2f s after they were whole\n", seconds_since(t_whole));
    auto dk = c.generate_data_key(SoftToken::kAesLabel);
    CHECK(to_vector(c.unwrap(dk.wrapped)) == to_vector(dk.key));
    CHECK(sign_with_token_ec(c, token) == 0);
}

TEST_CASE("a whole key the daemon cannot use is logged once and does not have its token reopened", "[token]") {
    SoftToken token;
    pkcs11_tool({"--token-label", token.label(), "--login", "--pin", token.pin(), "--keygen", "--key-type", "AES:16",
                 "--label", "aes-128", "--id", "0a80"});
    TokenConfig cfg;
    cfg.pin = token.pin();
    cfg.poll_ms = 100;
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()});
    // Several looks within the settle time, each reading the token's keys again.
    std::this_thread::sleep_for(1500ms);
    const std::string log = d.log();
    CHECK(count_occurrences(log, "\"aes-128\" (id 0a80) skipped: it is not a 256-bit AES key (CKA_VALUE_LEN 16)") == 1);
    CHECK(count_occurrences(log, "looks unfinished") == 0);
    CHECK(count_occurrences(log, "is open through module") == 1);
    auto c = d.client();
    CHECK(sign_with_token_ec(c, token) == 0);
}

TEST_CASE("fault module: a failing token answers TOKEN_ERROR and the daemon keeps serving", "[token][fault]") {
    SoftToken token;
    FaultModule fault;
    TokenConfig cfg = fault_config(fault, token);
    cfg.call_timeout_ms = 1000;
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id(), token.rsa_key_id(), token.aes_key_id()});
    auto c = d.client();
    const auto file_spki = c.get_public("file-ec").spki;
    auto sign_ec = [&](keychain::Client& cl) { return sign_with_token_ec(cl, token); };
    auto file_key_works = [&](keychain::Client& cl) { return file_ec_signs(cl, file_spki); };
    // Once the fault is gone the token key works again: by itself, or at the latest after DISCOVER
    // ("rescan devices and tokens now").
    auto recovers = [&](const char* what) {
        const auto t0 = Clock::now();
        if (wait_until(3s, [&] { return sign_ec(c) == 0; })) {
            std::printf("%s disarmed: the token key signed again after %.2f s\n", what, seconds_since(t0));
            return true;
        }
        const uint32_t found = c.discover();
        const bool ok = wait_until(5s, [&] { return sign_ec(c) == 0; });
        std::printf("%s disarmed: no recovery within 3 s by itself; after DISCOVER (%u new) the token key %s "
                    "(%.2f s after disarming)\n",
                    what, found, ok ? "signed again" : "still failed", seconds_since(t0));
        return ok;
    };
    REQUIRE(sign_ec(c) == 0);
    CHECK(fault.log().find("loaded " + fault.module()) != std::string::npos);

    SECTION("device-removed") {
        const auto spki = c.get_public(SoftToken::kRsaLabel).spki;
        fault.arm("device-removed");
        CHECK(code_name(sign_ec(c)) == code_name(KC_ERR_TOKEN_ERROR));
        CHECK(code_name(error_code_of([&] {
                  c.decrypt(SoftToken::kRsaLabel, KC_DECRYPT_RSA_OAEP_SHA1, oaep_encrypt(spki, MBEDTLS_MD_SHA1, {1, 2, 3}));
              })) == code_name(KC_ERR_TOKEN_ERROR));
        CHECK(code_name(error_code_of([&] { c.generate_data_key(SoftToken::kAesLabel); })) ==
              code_name(KC_ERR_TOKEN_ERROR));
        CHECK(file_key_works(c));
        auto dk = c.generate_data_key("file-kek");
        CHECK(to_vector(c.unwrap(dk.wrapped)) == to_vector(dk.key));
        std::this_thread::sleep_for(1s);  // a few presence polls
        CHECK(code_name(sign_ec(c)) == code_name(KC_ERR_TOKEN_ERROR));
        CHECK(c.status().version.size() > 0);
        CHECK(fault.log().find("device-removed C_Sign") != std::string::npos);
        fault.arm("none");
        CHECK(recovers("device-removed"));
    }
    SECTION("session-invalid: the daemon opens a new session and the sign succeeds") {
        fault.arm("session-invalid");
        CHECK(code_name(sign_ec(c)) == "OK");
        CHECK(fault.word() == "none");  // it fired
        CHECK(fault.log().find("session-invalid C_Sign") != std::string::npos);
        CHECK(sign_ec(c) == 0);
    }
    SECTION("oversized: TOKEN_ERROR, no crash") {
        fault.arm("oversized");
        CHECK(code_name(sign_ec(c)) == code_name(KC_ERR_TOKEN_ERROR));
        CHECK(fault.log().find("oversized C_Sign") != std::string::npos);
        CHECK(kill(d.daemon->pid(), 0) == 0);
        CHECK(c.status().version.size() > 0);
        CHECK(file_key_works(c));
        fault.arm("none");
        CHECK(recovers("oversized"));
    }
    SECTION("hang: TOKEN_ERROR after call_timeout_ms while other requests are answered") {
        fault.arm("hang");
        const auto t0 = Clock::now();
        auto hung = std::async(std::launch::async, [&] {
            auto own = d.client(40000);
            const int code = sign_ec(own);
            return std::make_pair(code, seconds_since(t0));
        });
        std::this_thread::sleep_for(200ms);
        // Meanwhile: STATUS and a file key on other connections.
        auto other = d.client(5000);
        const auto t_status = Clock::now();
        CHECK(other.status().version.size() > 0);
        const double status_s = seconds_since(t_status);
        const auto t_file = Clock::now();
        CHECK(file_key_works(other));
        const double file_s = seconds_since(t_file);
        CHECK(hung.wait_for(0s) == std::future_status::timeout);  // still waiting on the token
        const auto [code, took] = hung.get();
        std::printf("hang: SIGN answered %s after %.2f s (call_timeout_ms 1000); meanwhile STATUS took %.3f s, "
                    "a file-key SIGN %.3f s\n",
                    code_name(code).c_str(), took, status_s, file_s);
        CHECK(code_name(code) == code_name(KC_ERR_TOKEN_ERROR));
        CHECK(took >= 0.9);
        CHECK(took < 2.5);
        CHECK(status_s < 0.5);
        CHECK(file_s < 0.5);
        fault.arm("none");
        CHECK(recovers("hang"));
    }
}

TEST_CASE("fault module: oversized attribute sizes while the token is read do not crash the daemon",
          "[token][fault]") {
    SoftToken token;
    FaultModule fault;
    fault.arm("oversized");
    TokenDaemon d(token, fault_config(fault, token));
    auto c = d.client();
    c.wait("file-ec", 10000);
    std::this_thread::sleep_for(1s);  // the token is read in the background
    CHECK(fault.log().find("oversized C_GetAttributeValue") != std::string::npos);
    CHECK(kill(d.daemon->pid(), 0) == 0);
    CHECK(c.status().version.size() > 0);
    const auto digest = random_bytes(32);
    CHECK(signature_verifies(c.get_public("file-ec").spki, SignAlgorithm::EcdsaSha256, digest,
                   c.sign("file-ec", static_cast<int>(SignAlgorithm::EcdsaSha256), digest)));
}

TEST_CASE("8 clients signing at once through one token all get valid signatures", "[token]") {
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id()});
    constexpr int kClients = 8;
    constexpr int kSigns = 50;
    std::atomic<int> valid{0}, failed{0};
    std::vector<std::string> errors(kClients);
    std::vector<std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>> signed_by(kClients);
    std::vector<std::thread> threads;
    const auto t0 = Clock::now();
    for (int t = 0; t < kClients; ++t) {
        threads.emplace_back([&, t] {
            try {
                auto c = d.client();
                for (int i = 0; i < kSigns; ++i) {
                    auto digest = random_bytes(32);
                    auto sig = c.sign(SoftToken::kEcLabel, static_cast<int>(SignAlgorithm::EcdsaSha256), digest);
                    signed_by[t].emplace_back(std::move(digest), std::move(sig));
                }
            } catch (const std::exception& e) {
                errors[t] = e.what();
                ++failed;
            }
        });
    }
    for (auto& th : threads) th.join();
    const double took = seconds_since(t0);
    std::printf("%d clients x %d ECDSA P-256 signs through one token (sessions %d): %.2f s, %.0f signs/s\n", kClients,
                kSigns, cfg.sessions, took, kClients * kSigns / took);
    for (const auto& e : errors)
        if (!e.empty()) FAIL_CHECK("a client failed: " << e);
    for (const auto& client_sigs : signed_by)
        for (const auto& [digest, sig] : client_sigs)
            (signature_verifies(token.ec().spki_der, SignAlgorithm::EcdsaSha256, digest, sig) ? valid : failed)++;
    CHECK(failed == 0);
    CHECK(valid == kClients * kSigns);
}

TEST_CASE("the keys option selects which token keys are served", "[token]") {
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    cfg.keys = {"pkcs11:object=tls-ec;type=private"};
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id()});
    auto c = d.client();
    std::this_thread::sleep_for(500ms);
    const auto keys = c.list_keys(true);
    CHECK(std::any_of(keys.begin(), keys.end(), [&](const auto& k) { return k.id == token.ec_key_id(); }));
    CHECK(std::none_of(keys.begin(), keys.end(), [&](const auto& k) { return k.id == token.rsa_key_id(); }));
    CHECK(std::none_of(keys.begin(), keys.end(), [&](const auto& k) { return k.id == token.aes_key_id(); }));
    CHECK(error_code_of([&] { c.sign(SoftToken::kRsaLabel, static_cast<int>(SignAlgorithm::RsaPssSha256), random_bytes(32)); }) ==
          KC_ERR_NO_SUCH_KEY);
}

TEST_CASE("a token key FORGET dropped stays out while the token is polled, and DISCOVER brings it back", "[token]") {
    SoftToken token;
    TokenConfig cfg;
    cfg.pin = token.pin();
    cfg.poll_ms = 100;  // the token is read again on every poll for its first seconds
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id(), token.rsa_key_id()});
    auto c = d.client();
    REQUIRE(c.forget(token.ec_key_id()) == 1);
    // Many polls, all within the time a newly opened token is read again on each one.
    std::this_thread::sleep_for(1500ms);
    CHECK(error_code_of([&] { c.sign(token.ec_key_id(), static_cast<int>(SignAlgorithm::EcdsaSha256), random_bytes(32)); }) ==
          KC_ERR_KEY_NOT_PRESENT);
    // The other key was not touched.
    CHECK(error_code_of([&] { c.sign(token.rsa_key_id(), static_cast<int>(SignAlgorithm::RsaPssSha256), random_bytes(32)); }) ==
          0);
    CHECK(c.discover() == 1);
    CHECK(error_code_of([&] { c.sign(token.ec_key_id(), static_cast<int>(SignAlgorithm::EcdsaSha256), random_bytes(32)); }) ==
          0);
}

TEST_CASE("a client cannot make the daemon load a module or use an unconfigured token", "[token][fault]") {
    SoftToken token;
    token.init_token("other", "4321", "654321");  // on the same module, not in the config
    FaultModule evil("evil_module.so");           // a module the config never names
    TokenConfig cfg;
    cfg.pin = token.pin();
    TokenDaemon d(token, cfg);
    d.wait_for({token.ec_key_id()});
    auto c = d.client();
    const auto keys_before = c.list_keys(true).size();

    auto provide = [&](const std::string& uri, const std::string& pin) {
        auto b = req(Opcode::Provide);
        b.str(Tag::Pin, pin).str(Tag::TokenUri, uri);
        return request(d.socket(), std::move(b));
    };
    for (const std::string& uri : {std::string("pkcs11:token=other"), std::string("other"),
                                   "pkcs11:token=other;module-path=" + evil.module(), evil.module(),
                                   "pkcs11:module-path=" + evil.module(),
                                   // the configured token, but another module: never that module
                                   // (4321 is not web's PIN, so this may end as DENIED)
                                   "pkcs11:token=web;module-path=" + evil.module()}) {
        INFO("TOKEN_URI " << uri);
        auto r = provide(uri, "4321");
        CHECK(r.msg.opcode == uint8_t(Opcode::Error));
        INFO("answer: " << int(r.error_code()) << " " << r.error_message());
        CHECK(r.error_code() != uint8_t(ErrorCode::Internal));
        std::printf("PROVIDE TOKEN_URI %s -> error %d: %s\n", uri.c_str(), int(r.error_code()),
                    r.error_message().c_str());
    }
    CHECK(c.list_keys(true).size() == keys_before);
    // The evil copy was never even mapped into the daemon.
    CHECK(evil.log().find(evil.module()) == std::string::npos);
    CHECK(kill(d.daemon->pid(), 0) == 0);
}

TEST_CASE("modules not on the allowlist or writable by others are refused at start with a log line",
          "[token][fault]") {
    SoftToken token;
    // Either outcome is a refusal: the daemon exits with a config error, or it runs without the
    // token. Both must name the module, and the module must never be loaded.
    auto check_refused = [&](const FaultModule& m, TokenConfig cfg) {
        TempDir dir("keychaind-refuse");
        std::string log;
        bool running = false;
        try {
            DaemonProcess p(dir.path(), config_tail(dir, token, cfg));
            running = true;
            auto c = keychain::Client(p.socket_path());
            c.wait("file-ec", 10000);
            std::this_thread::sleep_for(1s);
            const auto keys = c.list_keys();
            CHECK(std::none_of(keys.begin(), keys.end(), [&](const auto& k) { return k.id == token.ec_key_id(); }));
            log = p.log();
        } catch (const std::runtime_error& e) {
            log = e.what();  // "keychaind exited during start-up:" and its log
        }
        INFO((running ? "daemon kept running; log:\n" : "daemon exited; log:\n") << log);
        std::string naming;
        for (const auto& l : running ? warning_lines(log) : std::vector<std::string>{log})
            if (l.find(m.module()) != std::string::npos) naming = l;
        CHECK_FALSE(naming.empty());
        std::printf("refused (%s): %s\n", running ? "daemon kept running" : "daemon exited",
                    naming.substr(0, naming.find('\n', naming.find(m.module()))).c_str());
        CHECK(m.log().find("mapped " + m.module()) == std::string::npos);
        CHECK(m.log().find("loaded " + m.module()) == std::string::npos);
    };

    SECTION("an absolute path not listed in module_paths") {
        FaultModule m;
        TokenConfig cfg = fault_config(m, token);
        cfg.module_paths = {};
        check_refused(m, cfg);
    }
    SECTION("a listed module file that others may write") {
        FaultModule m("writable.so", 0666);
        check_refused(m, fault_config(m, token));
    }
}
