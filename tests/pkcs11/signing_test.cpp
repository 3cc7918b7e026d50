// Signing with every mechanism, single- and multi-part, verified with mbedTLS; RSA-OAEP
// decryption; the checks on mechanisms, parameters and lengths.
#include <catch2/catch.hpp>

#include "pkcs11_fixture.h"

using namespace keychaind::test;

namespace {

struct HashCase {
    Hash hash;
    CK_MECHANISM_TYPE ecdsa, rsa_pkcs, rsa_pss, hash_mechanism;
    CK_RSA_PKCS_MGF_TYPE mgf;
    CK_ULONG size;
};
const HashCase kHashes[] = {
    {Hash::Sha256, CKM_ECDSA_SHA256, CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256,
     CKG_MGF1_SHA256, 32},
    {Hash::Sha384, CKM_ECDSA_SHA384, CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384,
     CKG_MGF1_SHA384, 48},
    {Hash::Sha512, CKM_ECDSA_SHA512, CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512,
     CKG_MGF1_SHA512, 64},
};

// A message longer than one hash block, so multi-part signing crosses block boundaries.
Bytes message() {
    Bytes m;
    for (int i = 0; i < 1000; ++i) m.push_back(static_cast<uint8_t>(i * 7));
    return m;
}

}  // namespace

TEST_CASE("ECDSA signs raw hashes and hashes itself, single- and multi-part, on P-256 and P-384") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const Bytes msg = message();
    for (const char* label : {"web-ec", "web-chain"}) {
        INFO(label);
        const TestIdentity& id =
            std::string(label) == "web-ec" ? test_keychain().ec : test_keychain().chain_leaf;
        const CK_OBJECT_HANDLE key = m.object(s, CKO_PRIVATE_KEY, label);
        const size_t raw_len = id.kind == keychaind::KeyKind::EcP256 ? 64 : 96;

        CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
        // CKM_ECDSA takes the hash, of any length: SHA-1 (TLS 1.0/1.1), SHA-256/384/512.
        for (Hash h : {Hash::Sha1, Hash::Sha256, Hash::Sha384, Hash::Sha512}) {
            const Bytes hash = digest(h, msg);
            const Bytes single = m.sign(s, key, ecdsa, hash);
            CHECK(single.size() == raw_len);
            CHECK(ecdsa_verifies(id.spki_der, hash, single));
            const Bytes multi = m.sign_multipart(s, key, ecdsa, hash, 7);
            CHECK(ecdsa_verifies(id.spki_der, hash, multi));
        }
        for (const HashCase& c : kHashes) {
            CK_MECHANISM mech{c.ecdsa, nullptr, 0};
            const Bytes hash = digest(c.hash, msg);
            CHECK(ecdsa_verifies(id.spki_der, hash, m.sign(s, key, mech, msg)));
            CHECK(ecdsa_verifies(id.spki_der, hash, m.sign_multipart(s, key, mech, msg, 100)));
            CHECK(ecdsa_verifies(id.spki_der, hash, m.sign_multipart(s, key, mech, msg, 1)));
            // The empty message is a message too.
            CHECK(ecdsa_verifies(id.spki_der, digest(c.hash, {}), m.sign(s, key, mech, {})));
        }
    }
}

TEST_CASE(
    "RSA PKCS#1 v1.5 signs a DigestInfo, TLS 1.1's MD5+SHA-1, and hashes itself, single- and "
    "multi-part") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const TestIdentity& id = test_keychain().rsa;
    const CK_OBJECT_HANDLE key = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    const Bytes msg = message();

    CK_MECHANISM raw{CKM_RSA_PKCS, nullptr, 0};
    for (const HashCase& c : kHashes) {
        const Bytes hash = digest(c.hash, msg);
        const Bytes di = digest_info(c.hash, hash);
        const Bytes single = m.sign(s, key, raw, di);
        CHECK(single.size() == 256);
        CHECK(rsa_pkcs1_verifies(id.spki_der, c.hash, hash, single));
        CHECK(rsa_pkcs1_verifies(id.spki_der, c.hash, hash, m.sign_multipart(s, key, raw, di, 10)));

        CK_MECHANISM hashed{c.rsa_pkcs, nullptr, 0};
        CHECK(rsa_pkcs1_verifies(id.spki_der, c.hash, hash, m.sign(s, key, hashed, msg)));
        CHECK(rsa_pkcs1_verifies(id.spki_der, c.hash, hash,
                                 m.sign_multipart(s, key, hashed, msg, 333)));
    }
    // TLS 1.0/1.1: MD5 || SHA-1, 36 bytes, no DigestInfo.
    const Bytes tls11 = [&] {
        Bytes md5sha1(16, 0x55);
        const Bytes sha1 = digest(Hash::Sha1, msg);
        md5sha1.insert(md5sha1.end(), sha1.begin(), sha1.end());
        return md5sha1;
    }();
    CHECK(rsa_pkcs1_raw_verifies(id.spki_der, tls11, m.sign(s, key, raw, tls11)));
    // CKM_RSA_PKCS takes at most k - 11 bytes.
    Bytes sig;
    CHECK(m.try_sign(s, key, raw, Bytes(245, 1), sig) == CKR_OK);
    CHECK(m.try_sign(s, key, raw, Bytes(246, 1), sig) == CKR_DATA_LEN_RANGE);
    CHECK(m.try_sign(s, key, raw, {}, sig) == CKR_DATA_LEN_RANGE);
}

TEST_CASE("RSA-PSS signs raw hashes and hashes itself with MGF1 and a hash-length salt") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const TestIdentity& id = test_keychain().rsa;
    const CK_OBJECT_HANDLE key = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    const Bytes msg = message();

    for (const HashCase& c : kHashes) {
        CK_RSA_PKCS_PSS_PARAMS params{c.hash_mechanism, c.mgf, c.size};
        const Bytes hash = digest(c.hash, msg);

        CK_MECHANISM raw{CKM_RSA_PKCS_PSS, &params, sizeof params};
        const Bytes single = m.sign(s, key, raw, hash);
        CHECK(single.size() == 256);
        CHECK(rsa_pss_verifies(id.spki_der, c.hash, hash, single));
        CHECK(rsa_pss_verifies(id.spki_der, c.hash, hash, m.sign_multipart(s, key, raw, hash, 16)));

        CK_MECHANISM hashed{c.rsa_pss, &params, sizeof params};
        CHECK(rsa_pss_verifies(id.spki_der, c.hash, hash, m.sign(s, key, hashed, msg)));
        CHECK(
            rsa_pss_verifies(id.spki_der, c.hash, hash, m.sign_multipart(s, key, hashed, msg, 64)));

        // CKM_RSA_PKCS_PSS takes exactly the hash its parameters name.
        Bytes sig;
        CHECK(m.try_sign(s, key, raw, Bytes(c.size + 1, 9), sig) == CKR_DATA_LEN_RANGE);
        CHECK(m.try_sign(s, key, raw, Bytes(c.size - 1, 9), sig) == CKR_DATA_LEN_RANGE);
    }
}

TEST_CASE("PSS parameters the daemon cannot honour are refused with CKR_MECHANISM_PARAM_INVALID") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const CK_OBJECT_HANDLE key = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    const auto init = [&](CK_MECHANISM_TYPE type, const CK_RSA_PKCS_PSS_PARAMS* p, CK_ULONG len) {
        CK_MECHANISM mech{type, const_cast<CK_RSA_PKCS_PSS_PARAMS*>(p), len};
        const CK_RV rv = m->C_SignInit(s, &mech, key);
        if (rv == CKR_OK) m->C_SignInit(s, nullptr, key);  // cancel
        return rv;
    };
    const CK_RSA_PKCS_PSS_PARAMS good{CKM_SHA256, CKG_MGF1_SHA256, 32};
    CHECK(init(CKM_RSA_PKCS_PSS, &good, sizeof good) == CKR_OK);
    CHECK(init(CKM_SHA256_RSA_PKCS_PSS, &good, sizeof good) == CKR_OK);

    const CK_RSA_PKCS_PSS_PARAMS salt0{CKM_SHA256, CKG_MGF1_SHA256, 0};
    const CK_RSA_PKCS_PSS_PARAMS salt20{CKM_SHA256, CKG_MGF1_SHA256, 20};
    const CK_RSA_PKCS_PSS_PARAMS mgf_mismatch{CKM_SHA256, CKG_MGF1_SHA1, 32};
    const CK_RSA_PKCS_PSS_PARAMS sha1{CKM_SHA_1, CKG_MGF1_SHA1, 20};
    const CK_RSA_PKCS_PSS_PARAMS sha224{CKM_SHA224, CKG_MGF1_SHA224, 28};
    for (const CK_RSA_PKCS_PSS_PARAMS* p : {&salt0, &salt20, &mgf_mismatch, &sha1, &sha224}) {
        CHECK(init(CKM_RSA_PKCS_PSS, p, sizeof *p) == CKR_MECHANISM_PARAM_INVALID);
    }
    // The mechanism's hash and the parameters' must agree.
    CHECK(init(CKM_SHA384_RSA_PKCS_PSS, &good, sizeof good) == CKR_MECHANISM_PARAM_INVALID);
    CHECK(init(CKM_RSA_PKCS_PSS, nullptr, 0) == CKR_MECHANISM_PARAM_INVALID);
    CHECK(init(CKM_RSA_PKCS_PSS, &good, sizeof good - 1) == CKR_MECHANISM_PARAM_INVALID);
    // Other mechanisms take no parameter.
    CHECK(init(CKM_SHA256_RSA_PKCS, &good, sizeof good) == CKR_MECHANISM_PARAM_INVALID);
}

TEST_CASE("mechanism, key and operation checks at C_SignInit and C_Sign") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const CK_OBJECT_HANDLE rsa = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    const CK_OBJECT_HANDLE ec = m.object(s, CKO_PRIVATE_KEY, "web-ec");
    const CK_OBJECT_HANDLE ec_pub = m.object(s, CKO_PUBLIC_KEY, "web-ec");
    CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
    CK_MECHANISM pkcs{CKM_SHA256_RSA_PKCS, nullptr, 0};
    CK_MECHANISM sha1_rsa{CKM_SHA1_RSA_PKCS, nullptr, 0};
    CK_MECHANISM oaep{CKM_RSA_PKCS_OAEP, nullptr, 0};

    CHECK(m->C_SignInit(s, &ecdsa, rsa) == CKR_KEY_TYPE_INCONSISTENT);
    CHECK(m->C_SignInit(s, &pkcs, ec) == CKR_KEY_TYPE_INCONSISTENT);
    CHECK(m->C_SignInit(s, &sha1_rsa, rsa) == CKR_MECHANISM_INVALID);
    CHECK(m->C_SignInit(s, &oaep, rsa) == CKR_MECHANISM_INVALID);
    CHECK(m->C_SignInit(s, &ecdsa, ec_pub) == CKR_KEY_HANDLE_INVALID);
    CHECK(m->C_SignInit(s, &ecdsa, 777777) == CKR_KEY_HANDLE_INVALID);

    // A size query and a short buffer keep the operation; the signature then comes.
    const Bytes hash = sha256(bytes_of("keep going"));
    REQUIRE(m->C_SignInit(s, &ecdsa, ec) == CKR_OK);
    CHECK(m->C_SignInit(s, &ecdsa, ec) == CKR_OPERATION_ACTIVE);
    CK_ULONG len = 0;
    REQUIRE(m->C_Sign(s, const_cast<uint8_t*>(hash.data()), hash.size(), nullptr, &len) == CKR_OK);
    CHECK(len == 64);
    Bytes sig(len);
    CK_ULONG short_len = 10;
    CHECK(m->C_Sign(s, const_cast<uint8_t*>(hash.data()), hash.size(), sig.data(), &short_len) ==
          CKR_BUFFER_TOO_SMALL);
    CHECK(short_len == 64);
    REQUIRE(m->C_Sign(s, const_cast<uint8_t*>(hash.data()), hash.size(), sig.data(), &len) ==
            CKR_OK);
    CHECK(ecdsa_verifies(test_keychain().ec.spki_der, hash, sig));
    // C_Sign ended it.
    CHECK(m->C_Sign(s, const_cast<uint8_t*>(hash.data()), hash.size(), sig.data(), &len) ==
          CKR_OPERATION_NOT_INITIALIZED);
    CHECK(m->C_SignUpdate(s, const_cast<uint8_t*>(hash.data()), hash.size()) ==
          CKR_OPERATION_NOT_INITIALIZED);
    CHECK(m->C_SignFinal(s, sig.data(), &len) == CKR_OPERATION_NOT_INITIALIZED);

    // An error ends the operation too.
    REQUIRE(m->C_SignInit(s, &ecdsa, ec) == CKR_OK);
    Bytes too_long(600, 1);
    CHECK(m->C_SignUpdate(s, too_long.data(), too_long.size()) == CKR_DATA_LEN_RANGE);
    CHECK(m->C_SignFinal(s, sig.data(), &len) == CKR_OPERATION_NOT_INITIALIZED);

    // Multi-part size query, then the signature.
    REQUIRE(m->C_SignInit(s, &pkcs, rsa) == CKR_OK);
    Bytes msg = bytes_of("part one, part two");
    REQUIRE(m->C_SignUpdate(s, msg.data(), 9) == CKR_OK);
    REQUIRE(m->C_SignUpdate(s, msg.data() + 9, msg.size() - 9) == CKR_OK);
    len = 0;
    REQUIRE(m->C_SignFinal(s, nullptr, &len) == CKR_OK);
    CHECK(len == 256);
    sig.assign(len, 0);
    short_len = 255;
    CHECK(m->C_SignFinal(s, sig.data(), &short_len) == CKR_BUFFER_TOO_SMALL);
    REQUIRE(m->C_SignFinal(s, sig.data(), &len) == CKR_OK);
    CHECK(rsa_pkcs1_verifies(test_keychain().rsa.spki_der, Hash::Sha256, sha256(msg), sig));

    // What the token does not do at all.
    CK_MECHANISM verify{CKM_ECDSA, nullptr, 0};
    CHECK(m->C_VerifyInit(s, &verify, ec_pub) == CKR_FUNCTION_NOT_SUPPORTED);
    CHECK(m->C_EncryptInit(s, &oaep, rsa) == CKR_FUNCTION_NOT_SUPPORTED);
    CK_MECHANISM sha{CKM_SHA256, nullptr, 0};
    CHECK(m->C_DigestInit(s, &sha) == CKR_FUNCTION_NOT_SUPPORTED);
    uint8_t random[8];
    CHECK(m->C_GenerateRandom(s, random, sizeof random) == CKR_RANDOM_NO_RNG);
}

TEST_CASE(
    "RSA-OAEP decrypts with SHA-1 and SHA-256, and refuses other parameters and bad ciphertexts") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const TestIdentity& id = test_keychain().rsa;
    const CK_OBJECT_HANDLE key = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    const Bytes secret = bytes_of("a data key, 32 bytes long......!");

    struct OaepCase {
        Hash hash;
        CK_MECHANISM_TYPE hash_mechanism;
        CK_RSA_PKCS_MGF_TYPE mgf;
        CK_ULONG max_plaintext;
    };
    for (const OaepCase& c :
         {OaepCase{Hash::Sha1, CKM_SHA_1, CKG_MGF1_SHA1, 256 - 2 * 20 - 2},
          OaepCase{Hash::Sha256, CKM_SHA256, CKG_MGF1_SHA256, 256 - 2 * 32 - 2}}) {
        CK_RSA_PKCS_OAEP_PARAMS params{c.hash_mechanism, c.mgf, CKZ_DATA_SPECIFIED, nullptr, 0};
        CK_MECHANISM mech{CKM_RSA_PKCS_OAEP, &params, sizeof params};
        Bytes ct = rsa_oaep_encrypt(id.spki_der, c.hash, secret);
        REQUIRE(m->C_DecryptInit(s, &mech, key) == CKR_OK);
        CK_ULONG len = 0;
        REQUIRE(m->C_Decrypt(s, ct.data(), ct.size(), nullptr, &len) == CKR_OK);
        CHECK(len == c.max_plaintext);
        // Room for less than the bound but more than the plaintext: fine.
        Bytes out(40);
        len = out.size();
        REQUIRE(m->C_Decrypt(s, ct.data(), ct.size(), out.data(), &len) == CKR_OK);
        CHECK(Bytes(out.begin(), out.begin() + static_cast<long>(len)) == secret);

        // Too little room: CKR_BUFFER_TOO_SMALL with the length, and the operation goes on.
        REQUIRE(m->C_DecryptInit(s, &mech, key) == CKR_OK);
        Bytes small(8);
        len = small.size();
        CHECK(m->C_Decrypt(s, ct.data(), ct.size(), small.data(), &len) == CKR_BUFFER_TOO_SMALL);
        CHECK(len == secret.size());
        out.assign(len, 0);
        REQUIRE(m->C_Decrypt(s, ct.data(), ct.size(), out.data(), &len) == CKR_OK);
        CHECK(out == secret);

        // A tampered ciphertext, and one of the wrong length.
        ct[100] ^= 1;
        REQUIRE(m->C_DecryptInit(s, &mech, key) == CKR_OK);
        len = out.size();
        CHECK(m->C_Decrypt(s, ct.data(), ct.size(), out.data(), &len) ==
              CKR_ENCRYPTED_DATA_INVALID);
        REQUIRE(m->C_DecryptInit(s, &mech, key) == CKR_OK);
        CHECK(m->C_Decrypt(s, ct.data(), ct.size() - 1, out.data(), &len) ==
              CKR_ENCRYPTED_DATA_LEN_RANGE);
        CHECK(m->C_Decrypt(s, ct.data(), ct.size(), out.data(), &len) ==
              CKR_OPERATION_NOT_INITIALIZED);
    }

    const auto init = [&](CK_RSA_PKCS_OAEP_PARAMS p) {
        CK_MECHANISM mech{CKM_RSA_PKCS_OAEP, &p, sizeof p};
        const CK_RV rv = m->C_DecryptInit(s, &mech, key);
        if (rv == CKR_OK) m->C_DecryptInit(s, nullptr, key);
        return rv;
    };
    uint8_t label[] = {'l', 'b', 'l'};
    CHECK(init({CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, label, sizeof label}) ==
          CKR_MECHANISM_PARAM_INVALID);
    CHECK(init({CKM_SHA256, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, nullptr, 0}) ==
          CKR_MECHANISM_PARAM_INVALID);
    CHECK(init({CKM_SHA384, CKG_MGF1_SHA384, CKZ_DATA_SPECIFIED, nullptr, 0}) ==
          CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM no_params{CKM_RSA_PKCS_OAEP, nullptr, 0};
    CHECK(m->C_DecryptInit(s, &no_params, key) == CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM pkcs{CKM_RSA_PKCS, nullptr, 0};
    CHECK(m->C_DecryptInit(s, &pkcs, key) == CKR_MECHANISM_INVALID);
    CK_RSA_PKCS_OAEP_PARAMS params{CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, nullptr, 0};
    CK_MECHANISM mech{CKM_RSA_PKCS_OAEP, &params, sizeof params};
    CHECK(m->C_DecryptInit(s, &mech, m.object(s, CKO_PRIVATE_KEY, "web-ec")) ==
          CKR_KEY_TYPE_INCONSISTENT);
}
