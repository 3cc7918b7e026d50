// Wycheproof test vectors against each backend: a subset of the published files, transcribed into
// tests/unit/core/vectors/ (each file names its source file, commit and the tcIds kept).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "backends.h"
#include "core/error.h"
#include "test_bytes.h"

using namespace keychaind;
using nlohmann::json;

namespace {

json load_vectors(const std::string& file) {
    const json doc =
        json::parse(test::read_file_text(std::string(KEYCHAIND_VECTORS_DIR) + "/" + file));
    // The header lists the tcIds kept: a file cut short or edited by hand does not pass.
    std::vector<int> ids;
    for (const json& group : doc.at("testGroups"))
        for (const json& tc : group.at("tests")) ids.push_back(tc.at("tcId").get<int>());
    REQUIRE(ids == doc.at("tcIds").get<std::vector<int>>());
    REQUIRE(ids.size() == doc.at("numberOfTests").get<size_t>());
    REQUIRE_FALSE(ids.empty());
    return doc;
}

std::vector<uint8_t> hex_field(const json& j, const char* name) {
    return test::unhex(j.at(name).get<std::string>());
}

// "acceptable" vectors (legacy or weak but not broken) may go either way; none of the kept
// ones is, but a later transcription may add some.
void check_outcome(const json& tc, bool accepted) {
    const std::string result = tc.at("result").get<std::string>();
    if (result == "acceptable") return;
    REQUIRE(accepted == (result == "valid"));
}

std::string describe(const std::string& file, const json& tc) {
    return file + " tcId " + std::to_string(tc.at("tcId").get<int>()) + " (" +
           tc.at("comment").get<std::string>() + ")";
}

}  // namespace

// The daemon's verify takes a digest: the test hashes each vector's message itself.
TEST_CASE("Wycheproof ECDSA P-256/SHA-256 vectors verify as published",
          "[core][crypto][wycheproof]") {
    FOR_EACH_BACKEND(backend);
    struct File {
        const char* name;
        SignAlgorithm alg;
    };
    for (const File& f : {File{"ecdsa_secp256r1_sha256.json", SignAlgorithm::EcdsaSha256}}) {
        const json doc = load_vectors(f.name);
        for (const json& group : doc.at("testGroups")) {
            const auto spki = hex_field(group, "publicKeyDer");
            for (const json& tc : group.at("tests")) {
                INFO(describe(f.name, tc));
                const auto msg = hex_field(tc, "msg");
                const auto digest =
                    f.alg == SignAlgorithm::EcdsaSha256 ? test::sha256(msg) : test::sha384(msg);
                check_outcome(tc, backend.verify(spki, f.alg, digest, hex_field(tc, "sig")));
            }
        }
    }
}

TEST_CASE("Wycheproof RSA-PSS 2048 SHA-256 MGF1 salt 32 vectors verify as published",
          "[core][crypto][wycheproof]") {
    FOR_EACH_BACKEND(backend);
    const std::string file = "rsa_pss_2048_sha256_mgf1_32.json";
    const json doc = load_vectors(file);
    for (const json& group : doc.at("testGroups")) {
        REQUIRE(group.at("sLen").get<int>() == 32);
        const auto spki = hex_field(group, "publicKeyDer");
        for (const json& tc : group.at("tests")) {
            INFO(describe(file, tc));
            const auto digest = test::sha256(hex_field(tc, "msg"));
            check_outcome(tc, backend.verify(spki, SignAlgorithm::RsaPssSha256, digest,
                                             hex_field(tc, "sig")));
        }
    }
}

// The private key comes from the vector file (privateKeyPkcs8), through the backend's own parser.
TEST_CASE("Wycheproof RSA-OAEP 2048 SHA-256 vectors decrypt as published",
          "[core][crypto][wycheproof]") {
    FOR_EACH_BACKEND(backend);
    struct File {
        const char* name;
        DecryptAlgorithm alg;
    };
    for (const File& f : {File{"rsa_oaep_2048_sha256_mgf1sha256.json", DecryptAlgorithm::RsaOaepSha256}}) {
        const json doc = load_vectors(f.name);
        for (const json& group : doc.at("testGroups")) {
            const auto key = backend.parse_private_key(hex_field(group, "privateKeyPkcs8"));
            REQUIRE(key->bits() == 2048);
            for (const json& tc : group.at("tests")) {
                INFO(describe(f.name, tc));
                REQUIRE(tc.at("label").get<std::string>().empty());  // the daemon's OAEP has none
                bool decrypted = false;
                try {
                    const SecretBytes plain = key->decrypt(f.alg, hex_field(tc, "ct"));
                    decrypted = true;
                    REQUIRE(plain.equals(hex_field(tc, "msg")));
                } catch (const KeychainError& e) {
                    REQUIRE(e.code() == ErrorCode::BadRequest);
                    REQUIRE(std::string(e.what()) == "RSA-OAEP decryption failed");
                }
                check_outcome(tc, decrypted);
            }
        }
    }
}

TEST_CASE("Wycheproof AES-256-GCM vectors (96-bit IV, 128-bit tag) seal and open as published",
          "[core][crypto][wycheproof]") {
    FOR_EACH_BACKEND(backend);
    const std::string file = "aes_gcm_256.json";
    const json doc = load_vectors(file);
    for (const json& group : doc.at("testGroups")) {
        REQUIRE(group.at("keySize").get<int>() == 256);
        REQUIRE(group.at("ivSize").get<int>() == 96);
        REQUIRE(group.at("tagSize").get<int>() == 128);
        for (const json& tc : group.at("tests")) {
            INFO(describe(file, tc));
            const auto key = hex_field(tc, "key");
            const auto iv = hex_field(tc, "iv");
            const auto aad = hex_field(tc, "aad");
            const auto msg = hex_field(tc, "msg");
            const auto ct = hex_field(tc, "ct");
            const auto tag = hex_field(tc, "tag");
            std::vector<uint8_t> plain(ct.size(), 0xee);
            const bool opened = backend.aes256_gcm_decrypt(key, iv, aad, ct, tag, plain);
            check_outcome(tc, opened);
            if (opened) {
                REQUIRE(plain == msg);
            } else {
                REQUIRE(plain == std::vector<uint8_t>(ct.size(), 0));
            }
            if (tc.at("result") == "valid" && msg.size() == ct.size()) {
                std::vector<uint8_t> sealed(msg.size()), sealed_tag(16);
                backend.aes256_gcm_encrypt(key, iv, aad, msg, sealed, sealed_tag);
                REQUIRE(sealed == ct);
                REQUIRE(sealed_tag == tag);
            }
        }
    }
}
