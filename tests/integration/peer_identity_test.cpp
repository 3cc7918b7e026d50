// Integration: the peer identity is taken once, at connect — a client that execs another program
// keeps the identity it connected with, and one whose identity cannot be established is denied.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "policy_fixture.h"
#include "test_keys.h"

#ifndef PEER_EXEC_CLIENT_BINARY
#error "PEER_EXEC_CLIENT_BINARY must name the built peer_exec_client"
#endif

using namespace keychaind;
using namespace keychaind::test;

namespace {

constexpr uid_t kClient = 2005;

std::string keychain_json() {
    const TestIdentity ec = make_identity(KeyKind::EcP256, 0, "web-ec");
    return nlohmann::json::array({identity_entry(ec, "web-ec")}).dump();
}

}  // namespace

TEST_CASE("identity: a client that execs keeps the executable it connected with", "[policy][identity]") {
    TempDir bins{"keychaind-bins"};
    REQUIRE(chmod(bins.path().c_str(), 0755) == 0);
    const std::string allowed = world_runnable_copy(PEER_EXEC_CLIENT_BINARY, bins, "allowed-client");
    const std::string other = world_runnable_copy(PEER_EXEC_CLIENT_BINARY, bins, "other-client");
    PolicyDaemon d(keychain_json(), "[[rule]]\nname = \"allowed program\"\npeer = { uid = 2005, exe = \"" + allowed +
                                        "\" }\noperations = [\"public\"]\nkeys = \"any\"\n");
    const auto run_as_client = [&](const std::string& first, const std::string& next) {
        return run_process({"setpriv", "--reuid=2005", "--regid=2005", "--clear-groups", "--", first, "connect",
                            d.socket(), next});
    };

    // Connected as the allowed program, then became the other one: still allowed.
    auto r = run_as_client(allowed, other);
    INFO(r.describe);
    CHECK(r.out == "ok\n");
    // Connected as the other program, then became the allowed one: still denied.
    r = run_as_client(other, allowed);
    INFO(r.describe);
    CHECK(r.out.rfind("error " + std::to_string(static_cast<int>(ErrorCode::Denied)) + " ", 0) == 0);

    const auto audit = d.audit();
    CHECK(records_with(audit, "decision", {{"/peer/exe", allowed}, {"/op", "public"}, {"/result", "allow"}}).size() == 1);
    CHECK(records_with(audit, "decision", {{"/peer/exe", other}, {"/op", "public"}, {"/result", "deny"}}).size() == 1);
    CHECK(records_with(audit, "decision", {{"/peer/uid", kClient}, {"/op", "public"}}).size() == 2);
}

TEST_CASE("identity: a peer whose identity cannot be established is denied", "[policy][identity]") {
    // Root may do everything; the peer below is root too, so only the missing identity denies it.
    PolicyDaemon d(keychain_json(), "[[rule]]\nname = \"root\"\npeer = { uid = 0 }\noperations = [\"all\"]\nkeys = \"any\"\n");
    REQUIRE(d.ctl_as(0, 0, {"public", "web-ec"}).exit_code == 0);

    // The connecting process is gone before the daemon accepts: no pidfd, no executable.
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    d.daemon->signal(SIGSTOP);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, d.socket().c_str(), sizeof addr.sun_path - 1);
        _exit(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    d.daemon->signal(SIGCONT);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    auto b = req(wire::Opcode::GetPublic);
    b.str(wire::Tag::Label, "web-ec");
    const WipingBuffer frame = b.finish();
    REQUIRE(write(fd, frame.data(), frame.size()) == static_cast<ssize_t>(frame.size()));
    wire::FrameReader reader(1 << 20);
    uint8_t buf[8192];
    std::optional<WipingBuffer> body;
    while (!body) {
        const ssize_t n = read(fd, buf, sizeof buf);
        REQUIRE(n > 0);
        reader.append({buf, static_cast<size_t>(n)});
        body = reader.next();
    }
    close(fd);
    const wire::Message m = wire::decode(*body);
    CHECK(m.opcode == static_cast<uint8_t>(wire::Opcode::Error));
    CHECK(m.get_u8(wire::Tag::ErrorCode) == static_cast<uint8_t>(ErrorCode::Denied));

    const auto denied = records_with(d.audit(), "decision", {{"/rule", "peer identity not established"}});
    REQUIRE(denied.size() == 1);
    CHECK(denied.front().at("peer").at("pid") == pid);
    CHECK(d.daemon->log().find("identity not established") != std::string::npos);
}
