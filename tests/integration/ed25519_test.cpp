// Integration: Ed25519 keys from a .4DKeyChain file, signed with through SIGN and checked with
// OpenSSL's EVP directly (never through the daemon's backend). The mbedtls build refuses the key.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/crypto_backend.h"
#include "core/error.h"
#include "core/key_id.h"
#include "daemon_fixture.h"
#include "protocol/message.h"
#include "server/operations.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::test;
using wire::Opcode;
using wire::Tag;

namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// A fresh key, as `openssl genpkey -algorithm ed25519` writes it (PKCS#8 PEM).
std::string new_ed25519_pem() {
    PkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
    REQUIRE(pkey != nullptr);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    char* text = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &text);
    return std::string(text, static_cast<size_t>(n));
}

// The SPKI of a PEM private key, written by OpenSSL itself.
std::vector<uint8_t> spki_of_pem(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                  BIO_free);
    PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    REQUIRE(pkey != nullptr);
    const int n = i2d_PUBKEY(pkey.get(), nullptr);
    REQUIRE(n > 0);
    std::vector<uint8_t> out(static_cast<size_t>(n));
    unsigned char* p = out.data();
    REQUIRE(i2d_PUBKEY(pkey.get(), &p) == n);
    return out;
}

bool ed25519_verifies(std::span<const uint8_t> spki, std::span<const uint8_t> message, std::span<const uint8_t> sig) {
    const unsigned char* p = spki.data();
    PkeyPtr pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())), EVP_PKEY_free);
    if (!pub || EVP_PKEY_is_a(pub.get(), "ED25519") != 1) return false;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    return EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pub.get(), nullptr) == 1 &&
           EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
}

Reply sign(const std::string& sock, const std::string& label, SignAlgorithm alg, std::span<const uint8_t> data) {
    auto b = req(Opcode::Sign);
    b.str(Tag::Label, label).u8(Tag::Algorithm, static_cast<uint8_t>(alg)).bytes(Tag::Data, data);
    return request(sock, std::move(b));
}

std::string backend_of(const std::string& sock) {
    auto st = request(sock, req(Opcode::Status));
    REQUIRE(st.msg.opcode == ok_opcode(Opcode::Status));
    return std::string(*st.msg.get_string(Tag::Backend));
}

}  // namespace

TEST_CASE("SIGN ed25519 over a message verifies against GET_PUBLIC's key, and mismatched keys are refused",
          "[integration][ed25519]") {
    const std::string ed_pem = new_ed25519_pem();
    const auto p256 = make_identity(KeyKind::EcP256);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "ed"}, {"privateKey", ed_pem}});
    j.push_back({{"name", "p256"}, {"privateKey", p256.key_pem_pkcs8}});
    KeysDaemon d(j.dump());
    const std::string backend = backend_of(d.socket());
    INFO("daemon backend " << backend);

    const std::vector<uint8_t> digest(32, 7);
    // ed25519 on an EC key: refused whatever the backend.
    CHECK(sign(d.socket(), "p256", SignAlgorithm::Ed25519, digest).error_code() == uint8_t(ErrorCode::Unsupported));

    if (backend.rfind("mbedtls", 0) == 0) {
        // KEYCHAIND_CRYPTO_BACKEND=mbedtls: the entry is skipped (Unsupported), the rest loads.
        auto pub = request(d.socket(), std::move(req(Opcode::GetPublic).str(Tag::Label, "ed")));
        CHECK(pub.error_code() == uint8_t(ErrorCode::NoSuchKey));
        return;
    }

    auto pub = request(d.socket(), std::move(req(Opcode::GetPublic).str(Tag::Label, "ed")));
    INFO(pub.error_message());
    REQUIRE(pub.msg.opcode == ok_opcode(Opcode::GetPublic));
    const auto spki_view = *pub.msg.get(Tag::PublicKey);
    const std::vector<uint8_t> spki(spki_view.begin(), spki_view.end());
    CHECK(spki == spki_of_pem(ed_pem));
    CHECK(spki.size() == 44);
    CHECK(*pub.msg.get_u8(Tag::Kind) == static_cast<uint8_t>(KeyKind::Ed25519));
    CHECK(*pub.msg.get_u32(Tag::Bits) == 256);
    CHECK(KeyId::for_public_key(spki) == *KeyId::from_bytes(*pub.msg.get(Tag::KeyId)));

    std::string text = "keychaind signs this message with Ed25519, no digest first. ";
    while (text.size() < 3000) text += text;
    const std::vector<uint8_t> message(text.begin(), text.end());
    auto sig_reply = sign(d.socket(), "ed", SignAlgorithm::Ed25519, message);
    INFO(sig_reply.error_message());
    REQUIRE(sig_reply.msg.opcode == ok_opcode(Opcode::Sign));
    const auto sig_view = *sig_reply.msg.get(Tag::Signature);
    const std::vector<uint8_t> sig(sig_view.begin(), sig_view.end());
    CHECK(sig.size() == 64);
    CHECK(ed25519_verifies(spki, message, sig));
    auto tampered = message;
    tampered[100] ^= 0x20;
    CHECK_FALSE(ed25519_verifies(spki, tampered, sig));
    // Deterministic (RFC 8032): the same message signs the same.
    auto again = sign(d.socket(), "ed", SignAlgorithm::Ed25519, message);
    REQUIRE(again.msg.opcode == ok_opcode(Opcode::Sign));
    CHECK(std::vector<uint8_t>(again.msg.get(Tag::Signature)->begin(), again.msg.get(Tag::Signature)->end()) == sig);

    SECTION("ecdsa-sha256 and rsa-pkcs1-sha256 on the Ed25519 key are UNSUPPORTED") {
        CHECK(sign(d.socket(), "ed", SignAlgorithm::EcdsaSha256, digest).error_code() == uint8_t(ErrorCode::Unsupported));
        CHECK(sign(d.socket(), "ed", SignAlgorithm::RsaPkcs1Sha256, digest).error_code() ==
              uint8_t(ErrorCode::Unsupported));
    }
    SECTION("a message over 16 KiB is a BAD_REQUEST, 16 KiB signs") {
        std::vector<uint8_t> big(kMaxEd25519MessageBytes + 1, 0x41);
        CHECK(sign(d.socket(), "ed", SignAlgorithm::Ed25519, big).error_code() == uint8_t(ErrorCode::BadRequest));
        big.pop_back();
        auto ok = sign(d.socket(), "ed", SignAlgorithm::Ed25519, big);
        REQUIRE(ok.msg.opcode == ok_opcode(Opcode::Sign));
        const auto s = ok.msg.get(Tag::Signature);
        CHECK(ed25519_verifies(spki, big, std::vector<uint8_t>(s->begin(), s->end())));
    }
    SECTION("LIST_KEYS shows the key as kind 5 with the sign usage only") {
        auto list = request(d.socket(), req(Opcode::ListKeys));
        REQUIRE(list.msg.opcode == ok_opcode(Opcode::ListKeys));
        bool found = false;
        for (const auto& info : list.msg.get_all(Tag::KeyInfo)) {
            const auto m = wire::decode_fields(info);
            wire::Message nested;
            nested.fields = m;
            if (nested.get_string(Tag::Label) != "ed") continue;
            found = true;
            CHECK(*nested.get_u8(Tag::Kind) == static_cast<uint8_t>(KeyKind::Ed25519));
            CHECK(*nested.get_u8(Tag::Usages) == 1);
        }
        CHECK(found);
    }
}

TEST_CASE("SIGN with ed25519 goes to the quick worker lane, RSA to the slow one", "[integration][ed25519]") {
    const auto lane = [](SignAlgorithm alg) {
        auto frame = req(Opcode::Sign).str(Tag::Label, "k").u8(Tag::Algorithm, static_cast<uint8_t>(alg)).finish();
        const auto msg = wire::decode(std::span<const uint8_t>(frame.data(), frame.size()).subspan(4));
        return Operations::lane_of(Opcode::Sign, msg);
    };
    CHECK(lane(SignAlgorithm::Ed25519) == Lane::Quick);
    CHECK(lane(SignAlgorithm::EcdsaSha256) == Lane::Quick);
    CHECK(lane(SignAlgorithm::RsaPssSha256) == Lane::Slow);
}
