// The module under real-life conditions: fork() (nginx's master and workers), a daemon restart,
// a key that goes away, no daemon at all, eight threads at once.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <regex>
#include <thread>

#include "keychain/client.h"
#include "pkcs11_fixture.h"

using namespace keychaind::test;

namespace {

const CK_MECHANISM kEcdsa{CKM_ECDSA, nullptr, 0};

// Signs in a fork()ed child with the parent's session and key handles (no C_Initialize), then
// after a C_Initialize of its own; the exit status names the first step that failed.
int sign_in_child(LoadedModule& m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key) {
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        const Bytes hash = sha256(bytes_of("signed in the child"));
        Bytes sig;
        if (m.try_sign(s, key, kEcdsa, hash, sig) != CKR_OK) _exit(10);
        if (!ecdsa_verifies(test_keychain().ec.spki_der, hash, sig)) _exit(11);
        // A child may also start over, as PKCS#11 tells it to: C_Initialize succeeds in it, with
        // its parent's settings (a worker that dropped privileges may not read the config file
        // any more): a socket named in the environment now is not used.
        setenv("KEYCHAIND_SOCKET", "/nonexistent/keychaind.sock", 1);
        if (m->C_Initialize(nullptr) != CKR_OK) _exit(12);
        CK_SESSION_HANDLE s2 = CK_INVALID_HANDLE;
        if (m->C_OpenSession(0, CKF_SERIAL_SESSION, nullptr, nullptr, &s2) != CKR_OK) _exit(13);
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        const std::string label = "web-ec";
        CK_ATTRIBUTE t[] = {attr(CKA_CLASS, cls), attr(CKA_LABEL, label)};
        CK_OBJECT_HANDLE k2 = CK_INVALID_HANDLE;
        CK_ULONG n = 0;
        if (m->C_FindObjectsInit(s2, t, 2) != CKR_OK ||
            m->C_FindObjects(s2, &k2, 1, &n) != CKR_OK || n != 1 ||
            m->C_FindObjectsFinal(s2) != CKR_OK)
            _exit(14);
        if (m.try_sign(s2, k2, kEcdsa, hash, sig) != CKR_OK) _exit(15);
        if (!ecdsa_verifies(test_keychain().ec.spki_der, hash, sig)) _exit(16);
        m->C_Finalize(nullptr);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("a child of fork() signs over a connection of its own and leaves the parent's alone") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const CK_OBJECT_HANDLE key = m.object(s, CKO_PRIVATE_KEY, "web-ec");
    const Bytes hash = sha256(bytes_of("parent"));
    // The parent has a connection open (and idle in the pool) when it forks.
    REQUIRE(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, key, kEcdsa, hash)));

    for (int i = 0; i < 3; ++i) CHECK(sign_in_child(m, s, key) == 0);

    // The parent's connection still works, was never closed by a child, and every child
    // connected on its own (twice: before and after its own C_Initialize).
    CHECK(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, key, kEcdsa, hash)));
    // The daemon logs "connection N from pid=P ..." and "connection N closed". The test process
    // connected twice: the fixture's readiness probe, then the module.
    const std::string log = daemon.process().log();
    const std::regex opened("connection ([0-9]+) from pid=([0-9]+) ");
    std::vector<std::string> parent_connections;
    size_t child_connections = 0;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), opened);
         it != std::sregex_iterator(); ++it) {
        if ((*it)[2] == std::to_string(getpid())) {
            parent_connections.push_back((*it)[1]);
        } else {
            ++child_connections;
        }
    }
    REQUIRE(parent_connections.size() == 2);
    CHECK(log.find("connection " + parent_connections[1] + " closed") == std::string::npos);
    CHECK(child_connections == 3 * 2);
}

TEST_CASE("after the daemon restarts, the same handles sign again") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const CK_OBJECT_HANDLE ec = m.object(s, CKO_PRIVATE_KEY, "web-ec");
    const CK_OBJECT_HANDLE rsa = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    const Bytes hash = sha256(bytes_of("before and after"));
    CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
    const CK_MECHANISM rsa_pss{CKM_RSA_PKCS_PSS, &pss, sizeof pss};
    REQUIRE(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, ec, kEcdsa, hash)));

    daemon.stop();
    Bytes sig;
    CHECK(m.try_sign(s, ec, kEcdsa, hash, sig) == CKR_DEVICE_ERROR);  // no daemon: a device error
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = attr(CKA_CLASS, cls);
    CHECK(m.find(s, {t}).empty());  // meanwhile the token shows nothing, and keeps the handles

    daemon.start();
    CHECK(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, ec, kEcdsa, hash)));
    CHECK(rsa_pss_verifies(test_keychain().rsa.spki_der, Hash::Sha256, hash,
                           m.sign(s, rsa, rsa_pss, hash)));

    // A restart while idle connections sit in the pool: the module reconnects on its own.
    daemon.stop();
    daemon.start();
    CHECK(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, ec, kEcdsa, hash)));
    CHECK(m.find(s, {t}).size() == 3);
}

TEST_CASE(
    "a forgotten key answers CKR_DEVICE_REMOVED and vanishes from the token, and signs again when "
    "back") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const CK_OBJECT_HANDLE ec = m.object(s, CKO_PRIVATE_KEY, "web-ec");
    const CK_OBJECT_HANDLE ec_cert = m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_CERTIFICATE}),
                                                attr(CKA_LABEL, std::string("web-ec"))})
                                         .at(0);
    const CK_OBJECT_HANDLE rsa = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    const Bytes hash = sha256(bytes_of("now you see it"));
    REQUIRE(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, ec, kEcdsa, hash)));

    // FORGET is an admin operation: these tests run as root.
    kc_client* admin = nullptr;
    REQUIRE(kc_connect(daemon.socket().c_str(), &admin) == KC_OK);
    uint32_t forgotten = 0;
    REQUIRE(kc_forget(admin, hex(sha256(test_keychain().ec.spki_der)).c_str(), &forgotten) ==
            KC_OK);
    CHECK(forgotten == 1);

    // The module learns it at the next request: the signature cannot be made.
    Bytes sig;
    CHECK(m.try_sign(s, ec, kEcdsa, hash, sig) == CKR_DEVICE_REMOVED);
    CHECK(m.try_sign(s, ec, kEcdsa, hash, sig) == CKR_DEVICE_REMOVED);
    // Its objects are gone from the token; the other keys are not.
    CK_ATTRIBUTE label{CKA_LABEL, nullptr, 0};
    CHECK(m->C_GetAttributeValue(s, ec, &label, 1) == CKR_OBJECT_HANDLE_INVALID);
    CHECK(m->C_GetAttributeValue(s, ec_cert, &label, 1) == CKR_OBJECT_HANDLE_INVALID);
    CHECK(m.find(s, {attr(CKA_LABEL, std::string("web-ec"))}).empty());
    CHECK(m.find(s, {}).size() == 7);
    CK_MECHANISM pkcs{CKM_SHA256_RSA_PKCS, nullptr, 0};
    CHECK(rsa_pkcs1_verifies(test_keychain().rsa.spki_der, Hash::Sha256, sha256(hash),
                             m.sign(s, rsa, pkcs, hash)));

    // A key forgotten after the module listed it: the sign itself reports it.
    const CK_OBJECT_HANDLE chain = m.object(s, CKO_PRIVATE_KEY, "web-chain");
    REQUIRE(kc_forget(admin, "web-chain", &forgotten) == KC_OK);
    CHECK(m.try_sign(s, chain, kEcdsa, hash, sig) == CKR_DEVICE_REMOVED);
    kc_close(admin);

    // The keys come back (the daemon reads its key directory again at start): the handles a
    // server kept sign again, and the token lists the keys under the same handles.
    daemon.stop();
    daemon.start();
    CHECK(ecdsa_verifies(test_keychain().ec.spki_der, hash, m.sign(s, ec, kEcdsa, hash)));
    CHECK(
        ecdsa_verifies(test_keychain().chain_leaf.spki_der, hash, m.sign(s, chain, kEcdsa, hash)));
    CHECK(m.object(s, CKO_PRIVATE_KEY, "web-ec") == ec);
    CHECK(m->C_GetAttributeValue(s, ec_cert, &label, 1) == CKR_OK);

    // A handle that never named a private key is refused at once.
    CK_MECHANISM mech = kEcdsa;
    CHECK(m->C_SignInit(s, &mech, ec_cert) == CKR_KEY_HANDLE_INVALID);
}

TEST_CASE(
    "without a daemon the token is empty, and a daemon that breaks the protocol is a device "
    "error") {
    TempDir dir("keychaind-pkcs11-nodaemon");
    {
        // Every p11-kit client loads the module: one listing all tokens must not fail for it.
        LoadedModule m(dir.file("nobody-listens.sock"));
        CK_ULONG n = 0;
        REQUIRE(m->C_GetSlotList(CK_TRUE, nullptr, &n) == CKR_OK);
        CK_TOKEN_INFO ti{};
        REQUIRE(m->C_GetTokenInfo(0, &ti) == CKR_OK);
        const CK_SESSION_HANDLE s = m.open_session();
        CHECK(m.find(s, {}).empty());
    }
    {
        // Something that answers garbage on the socket.
        const std::string path = dir.file("not-keychaind.sock");
        const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(listen(listener, 4) == 0);
        std::thread peer([listener] {
            const int c = accept(listener, nullptr, nullptr);
            if (c < 0) return;
            const uint8_t junk[] = {0, 0, 0, 8, 9, 9, 9, 9, 9, 9, 9, 9};
            (void)!write(c, junk, sizeof junk);
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            close(c);
        });
        LoadedModule m(path);
        const CK_SESSION_HANDLE s = m.open_session();
        CK_ATTRIBUTE none{CKA_LABEL, nullptr, 0};
        CHECK(m->C_FindObjectsInit(s, &none, 0) == CKR_DEVICE_ERROR);
        peer.join();
        close(listener);
        // No find was left active; nobody listens any more, so the token is empty again.
        CHECK(m.find(s, {}).empty());
    }
}

TEST_CASE("eight threads sign at once, each in its own session, every signature good") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    CK_OBJECT_HANDLE ec = CK_INVALID_HANDLE, rsa = CK_INVALID_HANDLE;
    {
        const CK_SESSION_HANDLE s = m.open_session();
        ec = m.object(s, CKO_PRIVATE_KEY, "web-ec");
        rsa = m.object(s, CKO_PRIVATE_KEY, "web-rsa");
    }
    constexpr int kThreads = 8;
    constexpr int kRounds = 40;
    std::atomic<int> good{0}, bad{0};
    std::atomic<long long> sign_us{0};
    const auto worker = [&](int t) {
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
        if (m->C_OpenSession(0, CKF_SERIAL_SESSION, nullptr, nullptr, &s) != CKR_OK) {
            bad += kRounds;
            return;
        }
        CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
        const CK_MECHANISM rsa_pss{CKM_RSA_PKCS_PSS, &pss, sizeof pss};
        for (int i = 0; i < kRounds; ++i) {
            const Bytes hash =
                sha256(bytes_of("thread " + std::to_string(t) + " round " + std::to_string(i)));
            const bool use_ec = (t + i) % 2 == 0;
            Bytes sig;
            const auto t0 = std::chrono::steady_clock::now();
            const CK_RV rv = m.try_sign(s, use_ec ? ec : rsa, use_ec ? kEcdsa : rsa_pss, hash, sig);
            sign_us += std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - t0)
                           .count();
            const bool ok =
                rv == CKR_OK &&
                (use_ec ? ecdsa_verifies(test_keychain().ec.spki_der, hash, sig)
                        : rsa_pss_verifies(test_keychain().rsa.spki_der, Hash::Sha256, hash, sig));
            (ok ? good : bad)++;
        }
        m->C_CloseSession(s);
    };
    worker(0);  // one thread alone first: the latency without contention
    REQUIRE(bad == 0);
    const long long alone_us = sign_us / kRounds;
    good = 0;
    sign_us = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
    for (auto& th : threads) th.join();
    CHECK(bad == 0);
    CHECK(good == kThreads * kRounds);
    WARN("mean C_SignInit+C_Sign (ECDSA P-256 and RSA-2048 PSS alternating): "
         << alone_us << " us alone, " << sign_us / (kThreads * kRounds) << " us with 8 threads");
}
