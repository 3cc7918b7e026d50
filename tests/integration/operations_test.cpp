// Integration: every operation against a real keychaind process.
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/crypto_backend.h"
#include "core/data_key_text.h"
#include "core/error.h"
#include "core/key_id.h"
#include "daemon_fixture.h"
#include "test_bytes.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::test;
using wire::Opcode;
using wire::Tag;

namespace {

std::vector<uint8_t> bytes_of(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }
std::span<const uint8_t> as_bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

KeyId id_of_hex(const char* hex) {
    auto raw = from_hex_string(hex);
    return KeyId::for_symmetric_key(as_bytes(*raw));
}

Reply gen_datakey(const std::string& sock, const std::string& label, const std::string& context) {
    auto b = req(Opcode::GenerateDataKey);
    b.str(Tag::Label, label);
    if (!context.empty()) b.str(Tag::Context, context);
    return request(sock, std::move(b));
}

Reply unwrap(const std::string& sock, std::span<const uint8_t> wrapped, const std::string& context) {
    auto b = req(Opcode::Unwrap);
    b.bytes(Tag::Wrapped, wrapped);
    if (!context.empty()) b.str(Tag::Context, context);
    return request(sock, std::move(b));
}

}  // namespace

TEST_CASE("every signing algorithm gives a signature that verifies against GET_PUBLIC's key", "[integration]") {
    const auto rsa = make_identity(KeyKind::Rsa);
    const auto p256 = make_identity(KeyKind::EcP256);
    const auto p384 = make_identity(KeyKind::EcP384);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "rsa"}, {"privateKey", rsa.key_pem_pkcs8}, {"certificate", rsa.cert_pem}});
    j.push_back({{"name", "p256"}, {"privateKey", p256.key_pem_legacy}, {"certificate", p256.cert_pem}});
    j.push_back({{"name", "p384"}, {"privateKey", p384.key_pem_pkcs8}});
    KeysDaemon d(j.dump());

    struct Case {
        std::string label;
        SignAlgorithm alg;
    };
    const std::vector<Case> cases = {
        {"rsa", SignAlgorithm::RsaPkcs1Sha256}, {"rsa", SignAlgorithm::RsaPkcs1Sha384},
        {"rsa", SignAlgorithm::RsaPkcs1Sha512}, {"rsa", SignAlgorithm::RsaPssSha256},
        {"rsa", SignAlgorithm::RsaPssSha384},   {"rsa", SignAlgorithm::RsaPssSha512},
        {"rsa", SignAlgorithm::RsaPkcs1Raw},    {"p256", SignAlgorithm::EcdsaSha256},
        {"p256", SignAlgorithm::EcdsaSha384},   {"p256", SignAlgorithm::EcdsaSha512},
        {"p384", SignAlgorithm::EcdsaSha256},   {"p384", SignAlgorithm::EcdsaSha384},
        {"p384", SignAlgorithm::EcdsaSha512},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.label << " " << sign_algorithm_name(c.alg)) {
            auto pub = request(d.socket(), std::move(req(Opcode::GetPublic).str(Tag::Label, c.label)));
            REQUIRE(pub.msg.opcode == ok_opcode(Opcode::GetPublic));
            const auto spki = bytes_of(*pub.msg.get(Tag::PublicKey));
            // The id is SHA-256 of the SubjectPublicKeyInfo.
            CHECK(KeyId::for_public_key(spki) == *KeyId::from_bytes(*pub.msg.get(Tag::KeyId)));

            std::vector<uint8_t> digest(sign_algorithm_digest_size(c.alg) ? sign_algorithm_digest_size(c.alg) : 51);
            crypto_backend().random(digest);
            if (c.alg == SignAlgorithm::RsaPkcs1Raw) {
                // A SHA-256 DigestInfo, as PKCS#11 CKM_RSA_PKCS callers build it.
                const uint8_t prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
                                          0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
                std::copy(std::begin(prefix), std::end(prefix), digest.begin());
            }
            auto b = req(Opcode::Sign);
            b.str(Tag::Label, c.label).u8(Tag::Algorithm, static_cast<uint8_t>(c.alg)).bytes(Tag::Data, digest);
            auto sig = request(d.socket(), std::move(b));
            INFO(sig.error_message());
            REQUIRE(sig.msg.opcode == ok_opcode(Opcode::Sign));
            const auto s = bytes_of(*sig.msg.get(Tag::Signature));
            CHECK(signature_verifies(spki, c.alg, digest, s));
            digest[0] ^= 1;
            CHECK_FALSE(signature_verifies(spki, c.alg, digest, s));
        }
    }

    SECTION("a certificate chain comes back with the public key") {
        auto pub = request(d.socket(), std::move(req(Opcode::GetPublic).str(Tag::Label, "rsa")));
        CHECK(pub.msg.get_all(Tag::Certificate).size() == 1);
    }
    SECTION("ECDSA with an RSA key is UNSUPPORTED, a short digest BAD_REQUEST") {
        std::vector<uint8_t> digest(32, 7);
        auto b = req(Opcode::Sign);
        b.str(Tag::Label, "rsa").u8(Tag::Algorithm, uint8_t(SignAlgorithm::EcdsaSha256)).bytes(Tag::Data, digest);
        CHECK(request(d.socket(), std::move(b)).error_code() == uint8_t(ErrorCode::Unsupported));
        auto b2 = req(Opcode::Sign);
        b2.str(Tag::Label, "p256").u8(Tag::Algorithm, uint8_t(SignAlgorithm::EcdsaSha256)).bytes(Tag::Data, std::span(digest).first(31));
        CHECK(request(d.socket(), std::move(b2)).error_code() == uint8_t(ErrorCode::BadRequest));
    }
}

TEST_CASE("RSA-OAEP DECRYPT returns what was encrypted to the public key", "[integration]") {
    const auto rsa = make_identity(KeyKind::Rsa);
    nlohmann::json j = nlohmann::json::array({{{"name", "rsa"}, {"privateKey", rsa.key_pem_legacy}}});
    KeysDaemon d(j.dump());
    auto pub = request(d.socket(), std::move(req(Opcode::GetPublic).str(Tag::Label, "rsa")));
    const auto spki = bytes_of(*pub.msg.get(Tag::PublicKey));
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    REQUIRE(mbedtls_pk_parse_public_key(&pk, spki.data(), spki.size()) == 0);
    mbedtls_rsa_context* r = mbedtls_pk_rsa(pk);
    mbedtls_rsa_set_padding(r, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
    const std::string secret = "a blob 4D encrypted";
    std::vector<uint8_t> ct(mbedtls_rsa_get_len(r));
    auto rng = [](void*, unsigned char* out, size_t n) {
        crypto_backend().random({out, n});
        return 0;
    };
    REQUIRE(mbedtls_rsa_rsaes_oaep_encrypt(r, rng, nullptr, MBEDTLS_RSA_PUBLIC, nullptr, 0, secret.size(),
                                           reinterpret_cast<const unsigned char*>(secret.data()), ct.data()) == 0);
    mbedtls_pk_free(&pk);
    auto b = req(Opcode::Decrypt);
    b.str(Tag::Label, "rsa").u8(Tag::Algorithm, uint8_t(DecryptAlgorithm::RsaOaepSha256)).bytes(Tag::Data, ct);
    auto out = request(d.socket(), std::move(b));
    REQUIRE(out.msg.opcode == ok_opcode(Opcode::Decrypt));
    const auto pt = *out.msg.get(Tag::Plaintext);
    CHECK(std::string(pt.begin(), pt.end()) == secret);
}

TEST_CASE("GENERATE_DATA_KEY then UNWRAP returns the same data key", "[integration]") {
    KeysDaemon d(two_keks_json());
    auto g = gen_datakey(d.socket(), "kek-1", "db:users");
    REQUIRE(g.msg.opcode == ok_opcode(Opcode::GenerateDataKey));
    const auto data_key = bytes_of(*g.msg.get(Tag::DataKey));
    const auto wrapped = bytes_of(*g.msg.get(Tag::Wrapped));
    CHECK(data_key.size() == 32);
    CHECK(wrapped.size() == 80);
    CHECK(*KeyId::from_bytes(*g.msg.get(Tag::KeyId)) == id_of_hex(kKek1Hex));

    auto u = unwrap(d.socket(), wrapped, "db:users");
    REQUIRE(u.msg.opcode == ok_opcode(Opcode::Unwrap));
    CHECK(bytes_of(*u.msg.get(Tag::DataKey)) == data_key);

    SECTION("another context is refused") {
        CHECK(unwrap(d.socket(), wrapped, "db:orders").error_code() == uint8_t(ErrorCode::BadRequest));
        CHECK(unwrap(d.socket(), wrapped, "").error_code() == uint8_t(ErrorCode::BadRequest));
    }
    SECTION("a flipped byte anywhere is refused") {
        for (size_t i = 0; i < wrapped.size(); ++i) {
            auto bad = wrapped;
            bad[i] ^= 0x01;
            const auto code = unwrap(d.socket(), bad, "db:users").error_code();
            INFO("byte " << i);
            // A flip inside the KEK id names a key nobody has; anywhere else it fails to authenticate.
            CHECK((code == uint8_t(ErrorCode::BadRequest) || (i >= 4 && i < 20 && code == uint8_t(ErrorCode::NoSuchKey))));
        }
    }
    SECTION("WRAP of a caller's key unwraps to the same bytes") {
        const std::string mine = "0123456789abcdef0123456789abcdef";
        auto b = req(Opcode::Wrap);
        b.str(Tag::Label, "kek-2").bytes(Tag::DataKey, as_bytes(mine)).str(Tag::Context, "x");
        auto w = request(d.socket(), std::move(b));
        REQUIRE(w.msg.opcode == ok_opcode(Opcode::Wrap));
        auto back = unwrap(d.socket(), bytes_of(*w.msg.get(Tag::Wrapped)), "x");
        const auto dk = *back.msg.get(Tag::DataKey);
        CHECK(std::string(dk.begin(), dk.end()) == mine);
    }
    SECTION("REWRAP moves the data key to the second KEK") {
        auto b = req(Opcode::Rewrap);
        b.bytes(Tag::Wrapped, wrapped).str(Tag::Context, "db:users").str(Tag::TargetLabel, "kek-2");
        auto r = request(d.socket(), std::move(b));
        REQUIRE(r.msg.opcode == ok_opcode(Opcode::Rewrap));
        const auto rewrapped = bytes_of(*r.msg.get(Tag::Wrapped));
        CHECK(*KeyId::from_bytes(std::span(rewrapped).subspan(4, 16)) == id_of_hex(kKek2Hex));
        // Only KEK 2 is needed now.
        auto f = req(Opcode::Forget);
        f.str(Tag::Label, "kek-1");
        REQUIRE(request(d.socket(), std::move(f)).msg.opcode == ok_opcode(Opcode::Forget));
        auto u2 = unwrap(d.socket(), rewrapped, "db:users");
        REQUIRE(u2.msg.opcode == ok_opcode(Opcode::Unwrap));
        CHECK(bytes_of(*u2.msg.get(Tag::DataKey)) == data_key);
    }
    SECTION("FORGET then UNWRAP answers KEY_NOT_PRESENT") {
        auto f = req(Opcode::Forget);
        f.str(Tag::Label, "kek-1");
        auto fr = request(d.socket(), std::move(f));
        REQUIRE(fr.msg.opcode == ok_opcode(Opcode::Forget));
        CHECK(fr.msg.get_u32(Tag::Count) == 1u);
        CHECK(unwrap(d.socket(), wrapped, "db:users").error_code() == uint8_t(ErrorCode::KeyNotPresent));
        // A wrapped key naming a KEK never seen is NO_SUCH_KEY.
        auto other = wrapped;
        other[10] ^= 0xff;
        CHECK(unwrap(d.socket(), other, "db:users").error_code() == uint8_t(ErrorCode::NoSuchKey));
    }
}

TEST_CASE("a keychain file dropped into a scanned directory appears after DISCOVER", "[integration]") {
    KeysDaemon d("");
    CHECK(request(d.socket(), req(Opcode::ListKeys)).msg.get_all(Tag::KeyInfo).empty());
    write_file(d.keys_dir + "/late.4DKeyChain", nlohmann::json({{"name", "late"}, {"encodedKey", kKek1Hex}}).dump());
    auto r = request(d.socket(), req(Opcode::Discover));
    REQUIRE(r.msg.opcode == ok_opcode(Opcode::Discover));
    CHECK(r.msg.get_u32(Tag::Count) == 1u);
    auto l = request(d.socket(), req(Opcode::ListKeys));
    REQUIRE(l.msg.get_all(Tag::KeyInfo).size() == 1);
    const auto info = wire::decode_fields(l.msg.get_all(Tag::KeyInfo)[0]);
    CHECK(gen_datakey(d.socket(), "late", "").msg.opcode == ok_opcode(Opcode::GenerateDataKey));
}

TEST_CASE("WAIT returns when the key arrives and times out when none does", "[integration]") {
    KeysDaemon d("");
    SECTION("times out") {
        auto b = req(Opcode::Wait);
        b.str(Tag::Label, "never").u32(Tag::TimeoutMs, 200);
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(request(d.socket(), std::move(b)).error_code() == uint8_t(ErrorCode::Timeout));
        CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(190));
    }
    SECTION("returns as soon as a PROVIDE adds the key") {
        RawClient waiter(d.socket());
        auto b = req(Opcode::Wait, 42);
        b.str(Tag::Label, "late-kek").u32(Tag::TimeoutMs, 10000);
        waiter.send(b);
        CHECK_FALSE(waiter.receive(std::chrono::milliseconds(200)).has_value());
        auto p = req(Opcode::Provide);
        p.str(Tag::Passphrase, "correct horse battery staple").str(Tag::Label, "late-kek");
        auto pr = request(d.socket(), std::move(p));
        REQUIRE(pr.msg.opcode == ok_opcode(Opcode::Provide));
        auto w = waiter.receive(std::chrono::seconds(5));
        REQUIRE(w.has_value());
        CHECK(w->msg.opcode == ok_opcode(Opcode::Wait));
        CHECK(w->msg.request_id == 42);
        // The id is the one the passphrase implies: SHA-256 of its bytes is the key.
        const auto key = passphrase_key("correct horse battery staple");
        CHECK(*KeyId::from_bytes(*pr.msg.get(Tag::KeyId)) == KeyId::for_symmetric_key(key.span()));
    }
}

TEST_CASE("SUBSCRIBE delivers added and removed events", "[integration]") {
    KeysDaemon d("");
    RawClient sub(d.socket());
    auto s = req(Opcode::Subscribe, 9);
    sub.send(s);
    REQUIRE(sub.receive()->msg.opcode == ok_opcode(Opcode::Subscribe));
    auto p = req(Opcode::Provide);
    p.str(Tag::EncodedKey, kKek1Hex).str(Tag::Label, "evt");
    request(d.socket(), std::move(p));
    auto added = sub.receive();
    REQUIRE(added);
    CHECK(added->msg.opcode == uint8_t(Opcode::Event));
    CHECK(added->msg.request_id == 9);
    CHECK(added->msg.get_u8(Tag::EventType) == uint8_t(1));
    request(d.socket(), std::move(req(Opcode::Forget).str(Tag::Label, "evt")));
    auto removed = sub.receive();
    REQUIRE(removed);
    CHECK(removed->msg.get_u8(Tag::EventType) == uint8_t(2));
    CHECK(removed->msg.get_string(Tag::Reason) == std::string("forget"));
}

TEST_CASE("LOCK refuses key operations until UNLOCK with the same password", "[integration]") {
    KeysDaemon d(two_keks_json());
    auto g = gen_datakey(d.socket(), "kek-1", "");
    const auto wrapped = bytes_of(*g.msg.get(Tag::Wrapped));
    REQUIRE(request(d.socket(), std::move(req(Opcode::Lock).str(Tag::Passphrase, "pw"))).msg.opcode == ok_opcode(Opcode::Lock));
    CHECK(unwrap(d.socket(), wrapped, "").error_code() == uint8_t(ErrorCode::Locked));
    CHECK(request(d.socket(), req(Opcode::Status)).msg.get_u8(Tag::Locked) == uint8_t(1));
    CHECK(request(d.socket(), std::move(req(Opcode::Unlock).str(Tag::Passphrase, "wrong"))).error_code() == uint8_t(ErrorCode::Denied));
    CHECK(unwrap(d.socket(), wrapped, "").error_code() == uint8_t(ErrorCode::Locked));
    CHECK(request(d.socket(), std::move(req(Opcode::Unlock).str(Tag::Passphrase, "pw"))).msg.opcode == ok_opcode(Opcode::Unlock));
    CHECK(unwrap(d.socket(), wrapped, "").msg.opcode == ok_opcode(Opcode::Unwrap));
}

TEST_CASE("a key is dropped when its expiry passes", "[integration]") {
    KeysDaemon d("");
    const auto soon = std::chrono::system_clock::now() + std::chrono::seconds(2);
    auto p = req(Opcode::Provide);
    p.str(Tag::EncodedKey, kKek1Hex).str(Tag::Label, "short-lived")
        .u64(Tag::Expires, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(soon.time_since_epoch()).count()));
    REQUIRE(request(d.socket(), std::move(p)).msg.opcode == ok_opcode(Opcode::Provide));
    CHECK(gen_datakey(d.socket(), "short-lived", "").msg.opcode == ok_opcode(Opcode::GenerateDataKey));
    REQUIRE(d.daemon->wait_for_log("key removed (expired)", std::chrono::seconds(5)));
    CHECK(gen_datakey(d.socket(), "short-lived", "").error_code() == uint8_t(ErrorCode::KeyNotPresent));
}

TEST_CASE("PROVIDE refuses an EXPIRES after 2199 and the daemon keeps serving", "[integration]") {
    // fuzz/corpus/dispatch/crash-provide-expires-overflow: such a time overflowed system_clock.
    KeysDaemon d("");
    for (const uint64_t t : {uint64_t{7258118400}, uint64_t{0xF400008657000000}, UINT64_MAX}) {
        auto p = req(Opcode::Provide);
        p.str(Tag::EncodedKey, kKek1Hex).u64(Tag::Expires, t);
        const Reply r = request(d.socket(), std::move(p));
        CHECK(r.error_code() == uint8_t(ErrorCode::BadRequest));
        CHECK(r.msg.get_string(Tag::Message)->find("after 2199-12-31T23:59:59Z") != std::string::npos);
    }
    auto last = req(Opcode::Provide);
    last.str(Tag::EncodedKey, kKek1Hex).str(Tag::Label, "until-2199").u64(Tag::Expires, 7258118399);
    REQUIRE(request(d.socket(), std::move(last)).msg.opcode == ok_opcode(Opcode::Provide));
    CHECK(gen_datakey(d.socket(), "until-2199", "").msg.opcode == ok_opcode(Opcode::GenerateDataKey));
}
