// Integration: libkeychain (keychain::Client, keychain::Batch and the C ABI) against a real
// keychaind process on a real socket. Signatures are verified and ids derived with mbedTLS
// directly, never through the daemon's own code.
#include <mbedtls/base64.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon_fixture.h"
#include "keychain/client.h"
#include "keychain/client.hpp"
#include "test_bytes.h"
#include "test_keys.h"

using namespace keychaind::test;
using keychaind::KeyKind;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kOtherHex = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

// A passphrase key is SHA-256 of the passphrase's bytes.
std::string passphrase_id(const std::string& passphrase) {
    return symmetric_id(sha256(Bytes(passphrase.begin(), passphrase.end())));
}

Bytes random_vec(size_t n) {
    Bytes v(n);
    REQUIRE(random_bytes(nullptr, v.data(), n) == 0);  // n <= 1024, CTR-DRBG's largest request
    return v;
}

Bytes to_vec(const keychain::SecretBuffer& s) { return Bytes(s.data(), s.data() + s.size()); }

// Every certificate of a PEM chain, as DER, in order.
std::vector<Bytes> der_chain(const std::string& pem) {
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    const int rc = mbedtls_x509_crt_parse(&crt, reinterpret_cast<const unsigned char*>(pem.c_str()), pem.size() + 1);
    std::vector<Bytes> out;
    for (const mbedtls_x509_crt* c = &crt; rc == 0 && c != nullptr && c->raw.len != 0; c = c->next)
        out.emplace_back(c->raw.p, c->raw.p + c->raw.len);
    mbedtls_x509_crt_free(&crt);
    REQUIRE(rc == 0);
    return out;
}

// The C ABI's algorithm numbers are the protocol's (KC_SIGN_* = SignAlgorithm).
bool verifies(const Bytes& spki, int alg, const Bytes& digest, const Bytes& sig) {
    return signature_verifies(spki, static_cast<keychaind::SignAlgorithm>(alg), digest, sig);
}

int rng(void*, unsigned char* out, size_t n) { return random_bytes(nullptr, out, n); }

// RSA-OAEP encryption to a public key, with mbedTLS directly.
Bytes oaep_encrypt(const Bytes& spki, mbedtls_md_type_t md, const std::string& message) {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    REQUIRE(mbedtls_pk_parse_public_key(&pk, spki.data(), spki.size()) == 0);
    mbedtls_rsa_context* r = mbedtls_pk_rsa(pk);
    mbedtls_rsa_set_padding(r, MBEDTLS_RSA_PKCS_V21, static_cast<int>(md));
    Bytes ct(mbedtls_rsa_get_len(r));
    const int rc = mbedtls_rsa_rsaes_oaep_encrypt(r, rng, nullptr, MBEDTLS_RSA_PUBLIC, nullptr, 0, message.size(),
                                                  reinterpret_cast<const unsigned char*>(message.data()), ct.data());
    mbedtls_pk_free(&pk);
    REQUIRE(rc == 0);
    return ct;
}

std::string keys_config(const std::string& keys_dir) { return "[keys]\ndirectories = [\"" + keys_dir + "\"]\n"; }

// Runs `f`, which must throw keychain::Error; returns its code (0 when it did not throw).
template <class F>
int error_code_of(F&& f) {
    try {
        f();
    } catch (const keychain::Error& e) {
        INFO(e.what());
        return e.code();
    }
    return 0;
}

template <class F>
std::optional<keychain::Error> error_of(F&& f) {
    try {
        f();
    } catch (const keychain::Error& e) {
        return e;
    }
    return std::nullopt;
}

const keychain::KeyInfo* find_label(const std::vector<keychain::KeyInfo>& keys, const std::string& label) {
    for (const auto& k : keys)
        if (k.label == label) return &k;
    return nullptr;
}

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

TEST_CASE("client: status, list_keys and get_public describe the keychain file's keys", "[integration]") {
    const auto ca = make_identity(KeyKind::EcP256, 2048, "client test CA");
    const auto ec = make_identity(KeyKind::EcP256, 2048, "ec leaf");
    const auto rsa = make_identity(KeyKind::Rsa, 2048, "rsa");
    const std::string ec_chain_pem = issue_certificate(ec, ca, "ec leaf") + ca.cert_pem;
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "kek-1"}, {"encodedKey", kKek1Hex}});
    j.push_back({{"name", "kek-2"}, {"encodedKey", kKek2Hex}});
    j.push_back({{"name", "ec"}, {"privateKey", ec.key_pem_legacy}, {"certificate", ec_chain_pem}});
    j.push_back({{"name", "rsa"}, {"privateKey", rsa.key_pem_pkcs8}, {"certificate", rsa.cert_pem}});
    KeysDaemon d(j.dump());
    keychain::Client kc(d.socket());
    const std::string file = d.keys_dir + "/test.4DKeyChain";

    const auto st = kc.status();
    CHECK_FALSE(st.version.empty());
    CHECK(st.backend == keychaind::crypto_backend().name());  // the backend this build selected
    CHECK(st.key_count == 4);
    CHECK_FALSE(st.locked);

    const auto keys = kc.list_keys();
    REQUIRE(keys.size() == 4);
    struct Expect {
        std::string label;
        int kind;
        uint32_t bits;
        uint8_t usages;
        std::string id;
        int index;
    };
    const std::vector<Expect> expected = {
        {"kek-1", KC_KIND_AES256, 256, KC_USAGE_WRAP, symmetric_id(unhex(kKek1Hex)), 0},
        {"kek-2", KC_KIND_AES256, 256, KC_USAGE_WRAP, symmetric_id(unhex(kKek2Hex)), 1},
        {"ec", KC_KIND_EC_P256, 256, KC_USAGE_SIGN, hex(sha256(ec.spki_der)), 2},
        {"rsa", KC_KIND_RSA, 2048, KC_USAGE_SIGN | KC_USAGE_DECRYPT, hex(sha256(rsa.spki_der)), 3},
    };
    for (const auto& e : expected) {
        INFO(e.label);
        const auto* k = find_label(keys, e.label);
        REQUIRE(k != nullptr);
        CHECK(k->id == e.id);
        CHECK(k->kind == e.kind);
        CHECK(k->bits == e.bits);
        CHECK(int(k->usages) == int(e.usages));
        CHECK(k->sources == std::vector<std::string>{"file:" + file + "#" + std::to_string(e.index)});
        CHECK(k->present);
        CHECK_FALSE(k->tethered);
        CHECK_FALSE(k->expires.has_value());
    }

    SECTION("get_public returns the identity's SPKI and the file's certificate chain") {
        const auto p = kc.get_public("ec");
        CHECK(p.id == hex(sha256(ec.spki_der)));
        CHECK(p.kind == KC_KIND_EC_P256);
        CHECK(p.bits == 256);
        CHECK(p.spki == ec.spki_der);
        const auto chain = der_chain(ec_chain_pem);
        REQUIRE(chain.size() == 2);
        CHECK(chain[1] == ca.cert_der);
        CHECK(p.certificates == chain);

        const auto r = kc.get_public(hex(sha256(rsa.spki_der)));  // by id
        CHECK(r.spki == rsa.spki_der);
        CHECK(r.certificates == std::vector<Bytes>{rsa.cert_der});
        CHECK(kc.get_public("label:rsa").id == r.id);

        CHECK(error_code_of([&] { kc.get_public("kek-1"); }) == KC_ERR_UNSUPPORTED);
        CHECK(error_code_of([&] { kc.get_public("no-such-label"); }) == KC_ERR_NO_SUCH_KEY);
    }

    SECTION("after FORGET a key is listed only with include_absent, as not present") {
        CHECK(kc.forget("kek-2") == 1);
        const auto now = kc.list_keys(false);
        CHECK(now.size() == 3);
        CHECK(find_label(now, "kek-2") == nullptr);
        const auto all = kc.list_keys(true);
        REQUIRE(all.size() == 4);
        const auto* gone = find_label(all, "kek-2");
        REQUIRE(gone != nullptr);
        CHECK_FALSE(gone->present);
        CHECK(gone->id == symmetric_id(unhex(kKek2Hex)));
        for (const auto& k : all)
            if (k.label != "kek-2") CHECK(k.present);
        CHECK(kc.status().key_count == 3);
    }
}

TEST_CASE("client: ECDSA and RSA signatures verify with mbedTLS, and RSA-OAEP decrypts", "[integration]") {
    const auto p256 = make_identity(KeyKind::EcP256);
    const auto rsa = make_identity(KeyKind::Rsa, 2048);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "p256"}, {"privateKey", p256.key_pem_pkcs8}});
    j.push_back({{"name", "rsa"}, {"privateKey", rsa.key_pem_legacy}});
    KeysDaemon d(j.dump());
    keychain::Client kc(d.socket());

    struct Case {
        const char* key;
        int alg;
        size_t digest;
        const Bytes* spki;
    };
    const std::vector<Case> cases = {
        {"p256", KC_SIGN_ECDSA_SHA256, 32, &p256.spki_der},
        {"p256", KC_SIGN_ECDSA_SHA384, 48, &p256.spki_der},
        {"rsa", KC_SIGN_RSA_PKCS1_SHA256, 32, &rsa.spki_der},
        {"rsa", KC_SIGN_RSA_PKCS1_SHA512, 64, &rsa.spki_der},
        {"rsa", KC_SIGN_RSA_PSS_SHA256, 32, &rsa.spki_der},
        {"rsa", KC_SIGN_RSA_PSS_SHA384, 48, &rsa.spki_der},
    };
    for (const auto& c : cases) {
        INFO(c.key << " alg " << c.alg);
        auto digest = random_vec(c.digest);
        const auto sig = kc.sign(c.key, c.alg, digest);
        if (std::string(c.key) == "rsa") CHECK(sig.size() == 256);
        CHECK(verifies(*c.spki, c.alg, digest, sig));
        digest[3] ^= 0x10;
        CHECK_FALSE(verifies(*c.spki, c.alg, digest, sig));
    }
    // Two PSS signatures of one digest differ (random salt) and both verify.
    const auto digest = random_vec(32);
    const auto s1 = kc.sign("rsa", KC_SIGN_RSA_PSS_SHA256, digest);
    const auto s2 = kc.sign("rsa", KC_SIGN_RSA_PSS_SHA256, digest);
    CHECK(s1 != s2);
    CHECK(verifies(rsa.spki_der, KC_SIGN_RSA_PSS_SHA256, digest, s2));

    CHECK(error_code_of([&] { kc.sign("rsa", KC_SIGN_ECDSA_SHA256, digest); }) == KC_ERR_UNSUPPORTED);
    CHECK(error_code_of([&] { kc.sign("p256", KC_SIGN_ECDSA_SHA256, Bytes(31, 1)); }) == KC_ERR_BAD_REQUEST);

    const std::string secret = "a blob encrypted to the RSA identity";
    const auto pt256 = kc.decrypt("rsa", KC_DECRYPT_RSA_OAEP_SHA256, oaep_encrypt(rsa.spki_der, MBEDTLS_MD_SHA256, secret));
    CHECK(std::string(reinterpret_cast<const char*>(pt256.data()), pt256.size()) == secret);
    const auto pt1 = kc.decrypt("rsa", KC_DECRYPT_RSA_OAEP_SHA1, oaep_encrypt(rsa.spki_der, MBEDTLS_MD_SHA1, secret));
    CHECK(std::string(reinterpret_cast<const char*>(pt1.data()), pt1.size()) == secret);
    // Ciphertext made for SHA-256 does not decrypt as SHA-1.
    CHECK(error_code_of([&] {
              kc.decrypt("rsa", KC_DECRYPT_RSA_OAEP_SHA1, oaep_encrypt(rsa.spki_der, MBEDTLS_MD_SHA256, secret));
          }) != 0);
    CHECK(error_code_of([&] { kc.decrypt("p256", KC_DECRYPT_RSA_OAEP_SHA256, Bytes(64, 1)); }) ==
          KC_ERR_UNSUPPORTED);
}

// One RSA key used for PSS or OAEP, then for PKCS#1 v1.5: each signature must stand on its own,
// whatever the key did before (mbedTLS keeps the padding mode in the key's context).
TEST_CASE("client: RSA PKCS#1 v1.5 signing still works after PSS signing or OAEP decryption", "[integration]") {
    const auto rsa = make_identity(KeyKind::Rsa, 2048);
    KeysDaemon d(nlohmann::json::array({{{"name", "rsa"}, {"privateKey", rsa.key_pem_pkcs8}}}).dump());
    keychain::Client kc(d.socket());
    const auto digest = random_vec(32);
    CHECK(verifies(rsa.spki_der, KC_SIGN_RSA_PKCS1_SHA256, digest, kc.sign("rsa", KC_SIGN_RSA_PKCS1_SHA256, digest)));

    SECTION("after a PSS signature") {
        CHECK(verifies(rsa.spki_der, KC_SIGN_RSA_PSS_SHA256, digest, kc.sign("rsa", KC_SIGN_RSA_PSS_SHA256, digest)));
    }
    SECTION("after an OAEP decryption") {
        const auto pt = kc.decrypt("rsa", KC_DECRYPT_RSA_OAEP_SHA256, oaep_encrypt(rsa.spki_der, MBEDTLS_MD_SHA256, "x"));
        CHECK(pt.size() == 1);
    }
    std::optional<keychain::Error> failure;
    Bytes sig;
    try {
        sig = kc.sign("rsa", KC_SIGN_RSA_PKCS1_SHA256, digest);
    } catch (const keychain::Error& e) {
        failure = e;
    }
    INFO((failure ? failure->what() : "signed"));
    REQUIRE_FALSE(failure.has_value());
    CHECK(verifies(rsa.spki_der, KC_SIGN_RSA_PKCS1_SHA256, digest, sig));
}

TEST_CASE("client: envelope round trips with two KEKs from a keychain file", "[integration]") {
    KeysDaemon d(two_keks_json());
    keychain::Client kc(d.socket());
    const std::string kek1_id = symmetric_id(unhex(kKek1Hex));
    const std::string kek2_id = symmetric_id(unhex(kKek2Hex));
    const auto listed = kc.list_keys();
    REQUIRE(find_label(listed, "kek-1") != nullptr);
    REQUIRE(find_label(listed, "kek-2") != nullptr);
    CHECK(find_label(listed, "kek-1")->id == kek1_id);
    CHECK(find_label(listed, "kek-2")->id == kek2_id);

    const auto dk = kc.generate_data_key("kek-1", "db:users");
    REQUIRE(dk.key.size() == 32);
    REQUIRE(dk.wrapped.size() >= 20);
    CHECK(std::string(dk.wrapped.begin(), dk.wrapped.begin() + 4) == "KCW1");
    CHECK(hex(dk.wrapped.data() + 4, 16) == kek1_id);
    const Bytes data_key = to_vec(dk.key);

    CHECK(to_vec(kc.unwrap(dk.wrapped, "db:users")) == data_key);

    SECTION("another context, or none, is BAD_REQUEST") {
        const auto e = error_of([&] { kc.unwrap(dk.wrapped, "db:orders"); });
        REQUIRE(e.has_value());
        CHECK(e->code() == KC_ERR_BAD_REQUEST);
        CHECK(std::string(e->name()) == "BAD_REQUEST");
        CHECK_FALSE(e->message().empty());
        CHECK(error_code_of([&] { kc.unwrap(dk.wrapped); }) == KC_ERR_BAD_REQUEST);
        // The client is still usable after an error reply.
        CHECK(to_vec(kc.unwrap(dk.wrapped, "db:users")) == data_key);
    }
    SECTION("wrap of a caller's key under kek-2 unwraps to the same bytes") {
        const Bytes mine = random_vec(48);
        const auto w = kc.wrap("kek-2", mine, "ctx");
        CHECK(std::string(w.begin(), w.begin() + 4) == "KCW1");
        CHECK(hex(w.data() + 4, 16) == kek2_id);
        CHECK(to_vec(kc.unwrap(w, "ctx")) == mine);
        // By id as well as by label.
        const auto w2 = kc.wrap(kek2_id, mine, "ctx");
        CHECK(to_vec(kc.unwrap(w2, "ctx")) == mine);
        CHECK(error_code_of([&] { kc.wrap("kek-2", Bytes{}, "ctx"); }) == KC_ERR_ARGUMENT);
    }
    SECTION("rewrap moves the data key to kek-2, which alone then unwraps it") {
        const auto rewrapped = kc.rewrap(dk.wrapped, "kek-2", "db:users");
        CHECK(std::string(rewrapped.begin(), rewrapped.begin() + 4) == "KCW1");
        CHECK(hex(rewrapped.data() + 4, 16) == kek2_id);
        CHECK(kc.forget("kek-1") == 1);
        CHECK(to_vec(kc.unwrap(rewrapped, "db:users")) == data_key);
        CHECK(error_code_of([&] { kc.unwrap(dk.wrapped, "db:users"); }) == KC_ERR_KEY_NOT_PRESENT);
        CHECK(error_code_of([&] { kc.rewrap(rewrapped, "kek-1", "db:users"); }) == KC_ERR_KEY_NOT_PRESENT);
        CHECK(error_code_of([&] { kc.rewrap(dk.wrapped, "kek-2", "db:other"); }) != 0);
    }
    SECTION("the C API gives the same round trip and zeroes outputs on failure") {
        kc_client* c = nullptr;
        REQUIRE(kc_connect(d.socket().c_str(), &c) == KC_OK);
        REQUIRE(c != nullptr);
        const std::string ctx = "db:users";
        kc_buffer key{};
        kc_buffer wrapped{};
        REQUIRE(kc_generate_data_key(c, "label:kek-2", reinterpret_cast<const uint8_t*>(ctx.data()), ctx.size(), &key,
                                     &wrapped) == KC_OK);
        CHECK(std::string(kc_last_error(c)).empty());
        CHECK(key.len == 32);
        CHECK(hex(wrapped.data + 4, 16) == kek2_id);
        kc_buffer back{};
        REQUIRE(kc_unwrap(c, wrapped.data, wrapped.len, reinterpret_cast<const uint8_t*>(ctx.data()), ctx.size(),
                          &back) == KC_OK);
        CHECK(Bytes(back.data, back.data + back.len) == Bytes(key.data, key.data + key.len));
        kc_buffer_free(&back);
        CHECK(back.data == nullptr);
        CHECK(back.len == 0);

        uint8_t junk[4] = {1, 2, 3, 4};
        kc_buffer bad{junk, sizeof junk};
        CHECK(kc_unwrap(c, wrapped.data, wrapped.len, nullptr, 0, &bad) == KC_ERR_BAD_REQUEST);
        CHECK(bad.data == nullptr);
        CHECK(bad.len == 0);
        CHECK_FALSE(std::string(kc_last_error(c)).empty());
        CHECK(std::string(kc_code_name(KC_ERR_BAD_REQUEST)) == "BAD_REQUEST");
        kc_buffer_free(&key);
        kc_buffer_free(&wrapped);
        kc_close(c);
    }
}

TEST_CASE("client: PROVIDE gives the id the key implies, then FORGET, LOCK and UNLOCK", "[integration]") {
    KeysDaemon d(two_keks_json());
    keychain::Client kc(d.socket());

    SECTION("a passphrase key's id is the symmetric id of SHA-256(passphrase)") {
        const std::string pass = "correct horse battery staple";
        const std::string id = kc.provide_passphrase(pass.c_str(), "pp");
        CHECK(id == passphrase_id(pass));
        CHECK(id == "e2476da18c49381dd34d6c5d1f398c9f");  // docs/keychain-file.md's test vector
        const auto keys = kc.list_keys();
        const auto* k = find_label(keys, "pp");
        REQUIRE(k != nullptr);
        CHECK(k->id == id);
        CHECK(k->kind == KC_KIND_AES256);
        CHECK(k->sources == std::vector<std::string>{"provided:uid=" + std::to_string(geteuid())});

        const auto dk = kc.generate_data_key(id, "c");  // by id
        CHECK(hex(dk.wrapped.data() + 4, 16) == id);
        CHECK(kc.forget("pp") == 1);
        CHECK(error_code_of([&] { kc.unwrap(dk.wrapped, "c"); }) == KC_ERR_KEY_NOT_PRESENT);
        CHECK(error_code_of([&] { kc.generate_data_key("pp"); }) == KC_ERR_KEY_NOT_PRESENT);
        CHECK(error_code_of([&] { kc.forget("pp"); }) == KC_ERR_KEY_NOT_PRESENT);
        CHECK(error_code_of([&] { kc.forget("never-was"); }) == KC_ERR_NO_SUCH_KEY);
    }
    SECTION("an encoded key's id is the symmetric id of its bytes, hex or base64") {
        const std::string id = kc.provide_encoded_key(kOtherHex, "enc");
        CHECK(id == symmetric_id(unhex(kOtherHex)));
        const auto raw = unhex(kOtherHex);
        unsigned char b64[64] = {};
        size_t olen = 0;
        REQUIRE(mbedtls_base64_encode(b64, sizeof b64, &olen, raw.data(), raw.size()) == 0);
        REQUIRE(olen == 44);
        const std::string id2 = kc.provide_encoded_key(reinterpret_cast<const char*>(b64), "enc");
        CHECK(id2 == id);
        const auto w = kc.wrap("label:enc", "0123456789abcdef", "");
        CHECK(kc.forget(id) >= 1);
        CHECK(error_code_of([&] { kc.unwrap(w); }) == KC_ERR_KEY_NOT_PRESENT);
        CHECK(error_code_of([&] { kc.provide_encoded_key("abc"); }) == KC_ERR_BAD_REQUEST);
        CHECK(error_code_of([&] { kc.provide_passphrase(""); }) == KC_ERR_ARGUMENT);
    }
    SECTION("forget_all drops every key") {
        kc.provide_passphrase("another one");
        CHECK(kc.forget_all() == 3);
        CHECK(kc.list_keys().empty());
        CHECK(kc.list_keys(true).size() == 3);
        CHECK(kc.status().key_count == 0);
    }
    SECTION("LOCK refuses key operations until UNLOCK with the same password") {
        const auto dk = kc.generate_data_key("kek-1", "x");
        kc.lock("s3cret");
        CHECK(kc.status().locked);
        CHECK(error_code_of([&] { kc.unwrap(dk.wrapped, "x"); }) == KC_ERR_LOCKED);
        CHECK(error_code_of([&] { kc.generate_data_key("kek-1"); }) == KC_ERR_LOCKED);
        CHECK(error_code_of([&] { kc.list_keys(); }) == KC_ERR_LOCKED);
        CHECK(error_code_of([&] { kc.lock("again"); }) == KC_ERR_LOCKED);
        const auto wrong = error_of([&] { kc.unlock("hunter2-guess"); });
        REQUIRE(wrong.has_value());
        CHECK(wrong->code() == KC_ERR_DENIED);
        CHECK(wrong->message().find("hunter2") == std::string::npos);  // the password is not echoed
        CHECK(error_code_of([&] { kc.unlock(); }) == KC_ERR_DENIED);
        CHECK(error_code_of([&] { kc.unwrap(dk.wrapped, "x"); }) == KC_ERR_LOCKED);
        kc.unlock("s3cret");
        CHECK_FALSE(kc.status().locked);
        CHECK(to_vec(kc.unwrap(dk.wrapped, "x")) == to_vec(dk.key));
    }
}

TEST_CASE("client: wait returns when the key is there, when it comes, or times out", "[integration]") {
    KeysDaemon d(two_keks_json());
    keychain::Client kc(d.socket());

    SECTION("a present key returns at once") {
        const auto t0 = Clock::now();
        const auto k = kc.wait("kek-1", 5000);
        CHECK(ms_since(t0) < 1000);
        CHECK(k.id == symmetric_id(unhex(kKek1Hex)));
        CHECK(k.present);
    }
    SECTION("a key PROVIDEd 300 ms later by another thread ends the wait right after") {
        const std::string pass = "late passphrase";
        std::promise<Clock::time_point> providing_at;
        auto when = providing_at.get_future();
        std::string provided_id;
        std::thread t([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            keychain::Client admin(d.socket());  // a client per thread
            providing_at.set_value(Clock::now());
            provided_id = admin.provide_passphrase(pass.c_str(), "late-kek");
        });
        const auto t0 = Clock::now();
        std::optional<keychain::KeyInfo> k;
        try {
            k = kc.wait("late-kek", 10000);
        } catch (...) {
            t.join();
            throw;
        }
        const auto returned = Clock::now();
        t.join();
        const double waited = std::chrono::duration<double, std::milli>(returned - t0).count();
        INFO("waited " << waited << " ms");
        CHECK(waited >= 290);
        CHECK(waited < 3000);
        CHECK(returned >= when.get());  // not before the PROVIDE was sent
        REQUIRE(k.has_value());
        CHECK(k->id == provided_id);
        CHECK(k->id == passphrase_id(pass));
        CHECK(k->label == "late-kek");
    }
    SECTION("a key that never comes gives KC_ERR_TIMEOUT after the timeout") {
        const auto t0 = Clock::now();
        const auto e = error_of([&] { kc.wait("never", 300); });
        const double waited = ms_since(t0);
        REQUIRE(e.has_value());
        CHECK(e->code() == KC_ERR_TIMEOUT);
        CHECK(waited >= 290);
        CHECK(waited < 3000);
        // The connection is still good.
        CHECK(kc.status().key_count == 2);
        // The C API's kc_wait: the same code, and out stays zeroed.
        kc_key_info info{};
        CHECK(kc_wait(kc.native_handle(), "never", 100, &info) == KC_ERR_TIMEOUT);
        CHECK(info.label == nullptr);
        REQUIRE(kc_wait(kc.native_handle(), "kek-2", 100, &info) == KC_OK);
        CHECK(std::string(info.id) == symmetric_id(unhex(kKek2Hex)));
        CHECK(std::string(info.label) == "kek-2");
        kc_key_info_clear(&info);
    }
}

TEST_CASE("client: set_timeout bounds a call to a daemon that does not answer, and wait adds its own",
          "[integration]") {
    KeysDaemon d(two_keks_json());
    keychain::Client kc(d.socket());
    REQUIRE(kc.status().key_count == 2);
    kc.set_timeout(300);

    SECTION("a stopped daemon: KC_ERR_IO after the timeout, then the next call connects afresh") {
        d.daemon->signal(SIGSTOP);
        struct Resume {
            DaemonProcess& p;
            ~Resume() { p.signal(SIGCONT); }
        } resume{*d.daemon};
        const auto t0 = Clock::now();
        const auto e = error_of([&] { kc.status(); });
        const double waited = ms_since(t0);
        REQUIRE(e.has_value());
        CHECK(e->code() == KC_ERR_IO);
        INFO(e->message());
        CHECK(waited >= 290);
        CHECK(waited < 3000);
        d.daemon->signal(SIGCONT);
        CHECK(kc.status().key_count == 2);
    }
    SECTION("wait longer than the call timeout ends with the daemon's TIMEOUT, not KC_ERR_IO") {
        const auto t0 = Clock::now();
        CHECK(error_code_of([&] { kc.wait("never", 1000); }) == KC_ERR_TIMEOUT);
        CHECK(ms_since(t0) >= 990);
    }
}

TEST_CASE("client: subscribe delivers added and removed events with the key's id", "[integration]") {
    KeysDaemon d("");
    keychain::Client sub(d.socket());
    keychain::Client admin(d.socket());
    sub.subscribe();
    CHECK_FALSE(sub.next_event(0).has_value());

    const std::string id = admin.provide_encoded_key(kKek1Hex, "evt");
    CHECK(id == symmetric_id(unhex(kKek1Hex)));
    // Other calls on the subscribed client keep working; the event is queued meanwhile.
    CHECK(sub.status().key_count == 1);
    const auto added = sub.next_event(5000);
    REQUIRE(added.has_value());
    CHECK(added->type == KC_EVENT_ADDED);
    CHECK(added->key.id == id);
    CHECK(added->key.label == "evt");
    CHECK(added->key.present);
    CHECK(added->lost == 0);

    CHECK(admin.forget("evt") == 1);
    const auto removed = sub.next_event(5000);
    REQUIRE(removed.has_value());
    CHECK(removed->type == KC_EVENT_REMOVED);
    CHECK(removed->key.id == id);
    CHECK(removed->reason == "forget");

    const auto t0 = Clock::now();
    CHECK_FALSE(sub.next_event(200).has_value());
    CHECK(ms_since(t0) >= 190);

    SECTION("a restart ends the subscription with KC_ERR_IO; subscribing again works") {
        d.daemon->stop(SIGTERM);
        d.daemon = std::make_unique<DaemonProcess>(d.dir.path(), keys_config(d.keys_dir));
        CHECK(error_code_of([&] { sub.next_event(2000); }) == KC_ERR_IO);
        CHECK(error_code_of([&] { sub.next_event(0); }) == KC_ERR_IO);  // still gone until subscribe
        sub.subscribe();
        keychain::Client admin2(d.socket());
        const std::string id2 = admin2.provide_encoded_key(kKek2Hex, "evt2");
        const auto ev = sub.next_event(5000);
        REQUIRE(ev.has_value());
        CHECK(ev->type == KC_EVENT_ADDED);
        CHECK(ev->key.id == id2);
    }
}

TEST_CASE("client: a batch of 200 pipelined unwraps returns every data key", "[integration]") {
    KeysDaemon d(two_keks_json());
    keychain::Client kc(d.socket());
    constexpr size_t kCount = 200;
    std::vector<Bytes> keys;
    std::vector<Bytes> wrapped;
    for (size_t i = 0; i < kCount; ++i) {
        keys.push_back(random_vec(16 + i % 48));
        wrapped.push_back(kc.wrap(i % 2 ? "kek-2" : "kek-1", keys.back(), "ctx-" + std::to_string(i)));
    }
    keychain::Batch batch;
    for (size_t i = 0; i < kCount; ++i) CHECK(batch.add_unwrap(wrapped[i], "ctx-" + std::to_string(i)) == i);
    // One item that fails (wrong context) does not disturb the others.
    const size_t bad = batch.add_unwrap(wrapped[0], "wrong");
    REQUIRE(batch.size() == kCount + 1);
    CHECK(batch.code(0) == KC_ERR_ARGUMENT);  // not run yet
    const auto t0 = Clock::now();
    batch.run(kc);
    INFO("batch of " << batch.size() << " took " << ms_since(t0) << " ms");
    size_t right = 0;
    for (size_t i = 0; i < kCount; ++i) {
        INFO("item " << i << ": " << batch.message(i));
        REQUIRE(batch.code(i) == KC_OK);
        if (to_vec(batch.result(i)) == keys[i]) ++right;
    }
    CHECK(right == kCount);
    CHECK(batch.code(bad) == KC_ERR_BAD_REQUEST);
    CHECK_FALSE(batch.message(bad).empty());
    CHECK(error_code_of([&] { batch.result(bad); }) == KC_ERR_BAD_REQUEST);
    CHECK(batch.code(kCount + 5) == KC_ERR_ARGUMENT);

    SECTION("generate and sign items in a batch") {
        const auto p256 = make_identity(KeyKind::EcP256);
        write_file(d.keys_dir + "/ec.4DKeyChain",
                   nlohmann::json({{"name", "ec"}, {"privateKey", p256.key_pem_pkcs8}}).dump());
        CHECK(kc.discover() == 1);
        keychain::Batch b2;
        std::vector<Bytes> digests;
        for (int i = 0; i < 20; ++i) {
            b2.add_generate_data_key("kek-1", "g");
            digests.push_back(random_vec(32));
            b2.add_sign("ec", KC_SIGN_ECDSA_SHA256, digests.back());
        }
        b2.run(kc);
        for (size_t i = 0; i < b2.size(); ++i) {
            INFO("item " << i << ": " << b2.message(i));
            REQUIRE(b2.code(i) == KC_OK);
            if (i % 2 == 0) {
                const auto w = b2.wrapped(i);
                CHECK(to_vec(kc.unwrap(w, "g")) == to_vec(b2.result(i)));
            } else {
                CHECK(verifies(p256.spki_der, KC_SIGN_ECDSA_SHA256, digests[i / 2], to_vec(b2.result(i))));
            }
        }
    }
}

TEST_CASE("client: an old Client reconnects once after the daemon restarts on the same socket", "[integration]") {
    KeysDaemon d(two_keks_json());
    keychain::Client kc(d.socket());
    const auto dk = kc.generate_data_key("kek-1", "r");
    REQUIRE(kc.status().key_count == 2);

    d.daemon->stop(SIGTERM);
    d.daemon = std::make_unique<DaemonProcess>(d.dir.path(), keys_config(d.keys_dir));

    // An idempotent call: the library finds the connection closed, reconnects, sends again.
    const auto st = kc.status();
    CHECK(st.key_count == 2);
    CHECK(st.uptime_seconds < 5);
    CHECK(to_vec(kc.unwrap(dk.wrapped, "r")) == to_vec(dk.key));

    SECTION("a batch of unwraps on the old connection goes out again after a restart") {
        keychain::Batch batch;
        for (int i = 0; i < 10; ++i) batch.add_unwrap(dk.wrapped, "r");
        d.daemon->stop(SIGTERM);
        d.daemon = std::make_unique<DaemonProcess>(d.dir.path(), keys_config(d.keys_dir));
        batch.run(kc);
        for (size_t i = 0; i < batch.size(); ++i) {
            INFO("item " << i << ": " << batch.message(i));
            REQUIRE(batch.code(i) == KC_OK);
            CHECK(to_vec(batch.result(i)) == to_vec(dk.key));
        }
    }
    SECTION("a request never written goes out again whatever its kind") {
        d.daemon->stop(SIGTERM);
        d.daemon = std::make_unique<DaemonProcess>(d.dir.path(), keys_config(d.keys_dir));
        const auto dk2 = kc.generate_data_key("kek-2", "r");
        CHECK(to_vec(kc.unwrap(dk2.wrapped, "r")) == to_vec(dk2.key));
    }
    SECTION("with no daemon at all the call fails with KC_ERR_CONNECT, and works again once it is back") {
        d.daemon->stop(SIGTERM);
        const auto e = error_of([&] { kc.status(); });
        REQUIRE(e.has_value());
        CHECK(e->code() == KC_ERR_CONNECT);
        CHECK(e->message().find(d.socket()) != std::string::npos);
        d.daemon = std::make_unique<DaemonProcess>(d.dir.path(), keys_config(d.keys_dir));
        CHECK(kc.status().key_count == 2);
    }
}

TEST_CASE("client: a missing socket gives KC_ERR_CONNECT naming the path", "[integration]") {
    TempDir dir("keychain-client");
    const std::string path = dir.file("no-daemon.sock");

    const auto e = error_of([&] { keychain::Client kc(path); });
    REQUIRE(e.has_value());
    CHECK(e->code() == KC_ERR_CONNECT);
    CHECK(std::string(e->name()) == "CONNECT");
    CHECK(e->message().find(path) != std::string::npos);

    kc_client* c = reinterpret_cast<kc_client*>(&dir);  // must be reset to NULL
    CHECK(kc_connect(path.c_str(), &c) == KC_ERR_CONNECT);
    CHECK(c == nullptr);
    CHECK(std::string(kc_last_error(nullptr)).find(path) != std::string::npos);

    SECTION("$KEYCHAIND_SOCKET is used when no path is given") {
        KeysDaemon d(two_keks_json());
        const char* old = std::getenv("KEYCHAIND_SOCKET");
        const std::optional<std::string> saved = old != nullptr ? std::optional<std::string>(old) : std::nullopt;
        setenv("KEYCHAIND_SOCKET", path.c_str(), 1);
        CHECK(error_code_of([&] { keychain::Client kc; }) == KC_ERR_CONNECT);
        CHECK(std::string(kc_last_error(nullptr)).find(path) != std::string::npos);
        setenv("KEYCHAIND_SOCKET", d.socket().c_str(), 1);
        keychain::Client kc;
        CHECK(kc.status().key_count == 2);
        if (saved)
            setenv("KEYCHAIND_SOCKET", saved->c_str(), 1);
        else
            unsetenv("KEYCHAIND_SOCKET");
    }
}
