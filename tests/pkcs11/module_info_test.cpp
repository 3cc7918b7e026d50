// The module's self-description: C_GetInfo, slots, the token, mechanisms, initialization, login.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <string>

#include "pkcs11_fixture.h"

using namespace keychaind::test;

namespace {

std::string text(const unsigned char* field, size_t n) {
    std::string s(reinterpret_cast<const char*>(field), n);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

}  // namespace

TEST_CASE(
    "C_GetInfo, C_GetSlotList and C_GetTokenInfo describe one slot holding the keychaind token") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());

    CK_INFO info{};
    REQUIRE(m->C_GetInfo(&info) == CKR_OK);
    CHECK(info.cryptokiVersion.major == 2);
    CHECK(info.cryptokiVersion.minor == 40);
    CHECK(text(info.manufacturerID, sizeof info.manufacturerID) == "keychaind");
    CHECK(text(info.libraryDescription, sizeof info.libraryDescription) ==
          "keychaind PKCS#11 module");
    CHECK(m->C_GetInfo(nullptr) == CKR_ARGUMENTS_BAD);

    CK_ULONG count = 0;
    REQUIRE(m->C_GetSlotList(CK_TRUE, nullptr, &count) == CKR_OK);
    REQUIRE(count == 1);
    CK_SLOT_ID slot = 99;
    CK_ULONG too_few = 0;
    CHECK(m->C_GetSlotList(CK_FALSE, &slot, &too_few) == CKR_BUFFER_TOO_SMALL);
    CHECK(too_few == 1);
    REQUIRE(m->C_GetSlotList(CK_TRUE, &slot, &count) == CKR_OK);
    CHECK(slot == 0);

    CK_SLOT_INFO si{};
    REQUIRE(m->C_GetSlotInfo(slot, &si) == CKR_OK);
    CHECK((si.flags & CKF_TOKEN_PRESENT) != 0);
    CHECK(m->C_GetSlotInfo(slot + 1, &si) == CKR_SLOT_ID_INVALID);

    CK_TOKEN_INFO ti{};
    REQUIRE(m->C_GetTokenInfo(slot, &ti) == CKR_OK);
    CHECK(text(ti.label, sizeof ti.label) == "keychaind");
    CHECK(text(ti.model, sizeof ti.model) == "keychaind");
    CHECK(text(ti.serialNumber, sizeof ti.serialNumber).size() == 16);
    CHECK((ti.flags & CKF_TOKEN_INITIALIZED) != 0);
    CHECK((ti.flags & CKF_LOGIN_REQUIRED) == 0);  // the daemon's policy decides, not a PIN
    CHECK((ti.flags & CKF_RNG) == 0);
    CHECK(ti.ulSessionCount == 0);
    m.open_session();
    REQUIRE(m->C_GetTokenInfo(slot, &ti) == CKR_OK);
    CHECK(ti.ulSessionCount == 1);
    CHECK(m->C_GetTokenInfo(7, &ti) == CKR_SLOT_ID_INVALID);
}

TEST_CASE(
    "C_GetMechanismList and C_GetMechanismInfo report what the daemon does, and nothing else") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());

    CK_ULONG n = 0;
    REQUIRE(m->C_GetMechanismList(0, nullptr, &n) == CKR_OK);
    std::vector<CK_MECHANISM_TYPE> list(n);
    CK_ULONG short_count = 2;
    CHECK(m->C_GetMechanismList(0, list.data(), &short_count) == CKR_BUFFER_TOO_SMALL);
    CHECK(short_count == n);
    REQUIRE(m->C_GetMechanismList(0, list.data(), &n) == CKR_OK);
    const std::vector<CK_MECHANISM_TYPE> expected{
        CKM_ECDSA,        CKM_ECDSA_SHA256,        CKM_ECDSA_SHA384,        CKM_ECDSA_SHA512,
        CKM_RSA_PKCS,     CKM_SHA256_RSA_PKCS,     CKM_SHA384_RSA_PKCS,     CKM_SHA512_RSA_PKCS,
        CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS,
        CKM_RSA_PKCS_OAEP};
    CHECK(list == expected);

    for (CK_MECHANISM_TYPE t : expected) {
        CK_MECHANISM_INFO mi{};
        REQUIRE(m->C_GetMechanismInfo(0, t, &mi) == CKR_OK);
        INFO("mechanism 0x" << std::hex << t);
        const bool ec = t == CKM_ECDSA || t == CKM_ECDSA_SHA256 || t == CKM_ECDSA_SHA384 ||
                        t == CKM_ECDSA_SHA512;
        CHECK(mi.ulMinKeySize == (ec ? 256u : 2048u));
        CHECK(mi.ulMaxKeySize == (ec ? 384u : 4096u));
        CHECK((mi.flags & (CKF_VERIFY | CKF_ENCRYPT | CKF_DIGEST | CKF_WRAP | CKF_UNWRAP |
                           CKF_GENERATE)) == 0);
        CHECK((mi.flags & CKF_HW) != 0);
        if (t == CKM_RSA_PKCS_OAEP) {
            CHECK(mi.flags == (CKF_HW | CKF_DECRYPT));
        } else {
            CHECK((mi.flags & CKF_SIGN) != 0);
            CHECK((mi.flags & CKF_DECRYPT) == 0);
        }
        if (ec)
            CHECK((mi.flags & (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)) ==
                  (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS));
    }
    CK_MECHANISM_INFO mi{};
    // The daemon has no SHA-1 signatures, no raw RSA, no PKCS#1 v1.5 decryption.
    CHECK(m->C_GetMechanismInfo(0, CKM_SHA1_RSA_PKCS, &mi) == CKR_MECHANISM_INVALID);
    CHECK(m->C_GetMechanismInfo(0, CKM_RSA_X_509, &mi) == CKR_MECHANISM_INVALID);
    CHECK(m->C_GetMechanismInfo(0, CKM_ECDSA_SHA1, &mi) == CKR_MECHANISM_INVALID);
    CHECK(m->C_GetMechanismInfo(3, CKM_ECDSA, &mi) == CKR_SLOT_ID_INVALID);
}

TEST_CASE(
    "calls before C_Initialize, a second C_Initialize, and C_Finalize answer as PKCS#11 says") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket(), "", false);
    CK_INFO info{};
    CK_ULONG n = 0;
    CHECK(m->C_GetInfo(&info) == CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK(m->C_GetSlotList(CK_TRUE, nullptr, &n) == CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK(m->C_Finalize(nullptr) == CKR_CRYPTOKI_NOT_INITIALIZED);

    // Some but not all mutex functions: refused.
    CK_C_INITIALIZE_ARGS partial{};
    partial.CreateMutex = [](void**) -> CK_RV { return CKR_OK; };
    CHECK(m->C_Initialize(&partial) == CKR_ARGUMENTS_BAD);

    REQUIRE(m->C_Initialize(nullptr) == CKR_OK);
    CHECK(m->C_Initialize(nullptr) == CKR_CRYPTOKI_ALREADY_INITIALIZED);
    int reserved = 0;
    CHECK(m->C_Finalize(&reserved) == CKR_ARGUMENTS_BAD);
    CK_SESSION_HANDLE s = m.open_session();
    REQUIRE(m->C_Finalize(nullptr) == CKR_OK);
    CK_SESSION_INFO si{};
    CHECK(m->C_GetSessionInfo(s, &si) == CKR_CRYPTOKI_NOT_INITIALIZED);
    // Initialized again, the old session is gone.
    REQUIRE(m->C_Initialize(nullptr) == CKR_OK);
    CHECK(m->C_GetSessionInfo(s, &si) == CKR_SESSION_HANDLE_INVALID);
}

TEST_CASE("login is not required, but any PIN is accepted from a caller that insists") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    CK_SESSION_INFO si{};
    REQUIRE(m->C_GetSessionInfo(s, &si) == CKR_OK);
    CHECK(si.state == CKS_RO_PUBLIC_SESSION);
    CHECK(si.flags == CKF_SERIAL_SESSION);

    // Signing works without login.
    const CK_OBJECT_HANDLE key = m.object(s, CKO_PRIVATE_KEY, "web-ec");
    const Bytes hash = sha256(bytes_of("no login needed"));
    CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
    CHECK(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, key, ecdsa, hash)));

    unsigned char pin[] = "any pin at all";
    REQUIRE(m->C_Login(s, CKU_USER, pin, sizeof pin - 1) == CKR_OK);
    REQUIRE(m->C_GetSessionInfo(s, &si) == CKR_OK);
    CHECK(si.state == CKS_RO_USER_FUNCTIONS);
    CHECK(m->C_Login(s, CKU_USER, nullptr, 0) == CKR_USER_ALREADY_LOGGED_IN);
    CHECK(m->C_Login(s, CKU_SO, pin, 3) == CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    CHECK(m->C_Login(s, 42, pin, 3) == CKR_USER_TYPE_INVALID);
    CHECK(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, key, ecdsa, hash)));
    REQUIRE(m->C_Logout(s) == CKR_OK);
    CHECK(m->C_Logout(s) == CKR_USER_NOT_LOGGED_IN);

    // A read/write session opens (some tools insist), though nothing can be written.
    CK_SESSION_HANDLE rw = CK_INVALID_HANDLE;
    REQUIRE(m->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &rw) ==
            CKR_OK);
    REQUIRE(m->C_GetSessionInfo(rw, &si) == CKR_OK);
    CHECK(si.state == CKS_RW_PUBLIC_SESSION);
    CK_SESSION_HANDLE parallel = CK_INVALID_HANDLE;
    CHECK(m->C_OpenSession(0, 0, nullptr, nullptr, &parallel) ==
          CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    REQUIRE(m->C_CloseSession(rw) == CKR_OK);
    CHECK(m->C_CloseSession(rw) == CKR_SESSION_HANDLE_INVALID);
    REQUIRE(m->C_CloseAllSessions(0) == CKR_OK);
    CHECK(m->C_GetSessionInfo(s, &si) == CKR_SESSION_HANDLE_INVALID);
}

TEST_CASE("the socket and the token label come from the module's config file") {
    KeychainDaemon daemon;
    const std::string config = daemon.dir() + "/pkcs11.conf";
    {
        std::ofstream f(config);
        f << "# keychaind PKCS#11 module\nsocket = \"" << daemon.socket()
          << "\"\ntoken_label = \"web servers\"\n"
          << "timeout_ms = 5000\n";
    }
    // KEYCHAIND_SOCKET would win over the file: point it nowhere, then clear it.
    LoadedModule m("/nonexistent/keychaind.sock", config, false);
    unsetenv("KEYCHAIND_SOCKET");
    REQUIRE(m->C_Initialize(nullptr) == CKR_OK);
    CK_TOKEN_INFO ti{};
    REQUIRE(m->C_GetTokenInfo(0, &ti) == CKR_OK);
    CHECK(std::string(reinterpret_cast<const char*>(ti.label), sizeof ti.label) ==
          "web servers                     ");
    const CK_SESSION_HANDLE s = m.open_session();
    CHECK(m.find(s, {attr(CKA_LABEL, std::string("web-rsa"))}).size() == 3);
}

TEST_CASE("a config file with a mistake makes C_Initialize fail") {
    KeychainDaemon daemon;
    const std::string config = daemon.dir() + "/bad.conf";
    for (const char* bad : {"sokcet = \"/run/x.sock\"\n", "socket = \"relative.sock\"\n",
                            "token_label = \"a label much longer than thirty-two bytes\"\n",
                            "timeout_ms = 0\n", "socket = \n"}) {
        {
            std::ofstream f(config, std::ios::trunc);
            f << bad;
        }
        LoadedModule m(daemon.socket(), config, false);
        INFO(bad);
        CHECK(m->C_Initialize(nullptr) == CKR_GENERAL_ERROR);
    }
    LoadedModule missing(daemon.socket(), daemon.dir() + "/no-such.conf", false);
    CHECK(missing->C_Initialize(nullptr) == CKR_GENERAL_ERROR);
}
