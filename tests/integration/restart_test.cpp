// Integration (issue 8): keychaind SIGKILLed under load by libkeychain clients and started again on
// the same socket and config; the clients' idempotent requests carry on through the reconnect.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
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

namespace {

constexpr const char* kKekHex = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf";

// Mount points (field 5 of mountinfo) under `dir` in the mount namespace of `pid` ("self" too).
std::vector<std::string> mounts_under(const std::string& pid, const std::string& dir) {
    std::ifstream in("/proc/" + pid + "/mountinfo");
    std::vector<std::string> found;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, point;
        fields >> id >> parent >> devno >> root >> point;
        if (point == dir || point.rfind(dir + "/", 0) == 0) found.push_back(point);
    }
    return found;
}

std::vector<std::string> sockets_in(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.is_socket()) out.push_back(e.path().string());
    return out;
}

// What the client threads saw, before and after the restart.
struct Tally {
    std::mutex mu;
    std::vector<std::string> errors;  // every failed call, "SIGN: IO: ..."
    std::atomic<int> wrong_replies{0};
    std::atomic<int> ok{0};
};

}  // namespace

TEST_CASE("SIGKILL under load: keychaind restarts on its socket and clients' SIGN and UNWRAP carry on",
          "[integration]") {
    const auto ec = make_identity(KeyKind::EcP256, 2048, "restart ec");
    const nlohmann::json keys = nlohmann::json::array(
        {identity_entry(ec, "restart-ec"), {{"name", "restart-kek"}, {"encodedKey", kKekHex}}});
    KeysDaemon d(keys.dump());
    const std::string sock = d.socket();
    const std::string config_tail = "[keys]\ndirectories = [\"" + d.keys_dir + "\"]\n";

    // GENERATE_DATA_KEY is not idempotent: made once, before the load.
    Bytes data_key, wrapped;
    {
        keychain::Client setup(sock);
        auto dk = setup.generate_data_key("restart-kek");
        data_key.assign(dk.key.data(), dk.key.data() + dk.key.size());
        wrapped = dk.wrapped;
    }

    constexpr int kThreads = 4;
    Tally tally;
    std::atomic<bool> restarted{false}, stop{false};
    std::atomic<int> after_restart[kThreads] = {};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            keychain::Client kc(sock);
            for (uint32_t n = 0; !stop; ++n) {
                const bool sign = (n + static_cast<uint32_t>(t)) % 2 == 0;
                try {
                    if (sign) {
                        const Bytes digest = sha256(bytes_of("restart " + std::to_string(t) + " " + std::to_string(n)));
                        const auto sig = kc.sign("restart-ec", KC_SIGN_ECDSA_SHA256, digest);
                        if (!signature_verifies(ec.spki_der, keychaind::SignAlgorithm::EcdsaSha256, digest, sig))
                            ++tally.wrong_replies;
                    } else {
                        const auto key = kc.unwrap(wrapped);
                        if (Bytes(key.data(), key.data() + key.size()) != data_key) ++tally.wrong_replies;
                    }
                    ++tally.ok;
                    if (restarted) ++after_restart[t];
                } catch (const keychain::Error& e) {
                    std::lock_guard lk(tally.mu);
                    tally.errors.push_back(std::string(sign ? "SIGN: " : "UNWRAP: ") + e.what());
                }
            }
        });
    }
    const auto wait_until = [](auto done, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return done();
    };
    REQUIRE(wait_until([&] { return tally.ok >= 200; }, std::chrono::seconds(20)));

    // The daemon's staging tmpfs for devices exists in its own mount namespace only.
    const pid_t old_pid = d.daemon->pid();
    const auto daemon_mounts = mounts_under(std::to_string(old_pid), d.dir.path());
    const int status = d.daemon->stop(SIGKILL);  // waits for it: reaped
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    CHECK_FALSE(std::filesystem::exists("/proc/" + std::to_string(old_pid)));
    struct stat st {};
    REQUIRE(lstat(sock.c_str(), &st) == 0);  // a SIGKILLed daemon leaves its socket file behind
    CHECK(S_ISSOCK(st.st_mode));

    restarted = true;
    d.daemon = std::make_unique<DaemonProcess>(d.dir.path(), config_tail);
    CHECK(d.daemon->log().find("removed stale socket " + sock) != std::string::npos);
    CHECK(wait_until(
        [&] {
            for (const auto& n : after_restart)
                if (n < 20) return false;
            return true;
        },
        std::chrono::seconds(20)));
    stop = true;
    for (auto& th : threads) th.join();

    {
        std::lock_guard lk(tally.mu);
        std::string all;
        for (const auto& e : tally.errors) all += e + "\n";
        INFO("failed calls:\n" << all << "daemon log:\n" << d.daemon->log());
        // Every call was idempotent, and the daemon was back within the reconnect's wait.
        CHECK(tally.errors.empty());
    }
    CHECK(tally.wrong_replies == 0);
    for (const auto& n : after_restart) CHECK(n >= 20);

    // Nothing of the killed daemon is left: one socket, no mount in our namespace.
    CHECK(sockets_in(d.dir.path()) == std::vector<std::string>{sock});
    CHECK(mounts_under("self", d.dir.path()).empty());
    if (geteuid() == 0) {
        INFO("the daemon's own mounts: " << daemon_mounts.size());
        CHECK(daemon_mounts == std::vector<std::string>{d.dir.path() + "/devices"});
    }
    // The new daemon serves on the one socket path.
    keychain::Client after(sock);
    CHECK(after.get_public("restart-ec").spki == ec.spki_der);
}

TEST_CASE("a daemon gone for good: an idempotent call fails with CONNECT after the reconnect's wait",
          "[integration]") {
    KeysDaemon d(nlohmann::json({{"name", "kek"}, {"encodedKey", kKekHex}}).dump());
    keychain::Client kc(d.socket());
    const auto dk = kc.generate_data_key("kek");
    kc.set_timeout(1000);  // the reconnect waits at most this long
    d.daemon->stop(SIGKILL);
    const auto start = std::chrono::steady_clock::now();
    int code = 0;
    std::string message;
    try {
        kc.unwrap(dk.wrapped);
    } catch (const keychain::Error& e) {
        code = e.code();
        message = e.message();
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    INFO(message);
    CHECK(code == KC_ERR_CONNECT);
    CHECK(message.find("cannot connect to " + d.socket()) != std::string::npos);
    CHECK(waited >= std::chrono::milliseconds(800));
    CHECK(waited < std::chrono::seconds(3));
}
