// Integration (issue 8): faults around a real daemon — too little lockable memory, a config that is
// half-written or unreadable at SIGHUP, an audit file on a full disk.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "child_process.h"
#include "core/error.h"
#include "daemon_fixture.h"
#include "process_inspection.h"
#include "test_bytes.h"
#include "tiny_tmpfs.h"

using namespace keychaind;
using namespace keychaind::test;
using namespace std::chrono_literals;
using wire::Opcode;
using wire::Tag;

namespace {

size_t count_of(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
    return n;
}

// Waits until `needle` is in the daemon's log more often than `before` times.
bool wait_for_another(const DaemonProcess& d, const std::string& needle, size_t before) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (count_of(d.log(), needle) > before) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

// One request on a fresh connection, answered within 2 s (a stalled daemon fails the test).
std::optional<Reply> ask(const std::string& socket, wire::MessageBuilder b) {
    RawClient c(socket);
    c.send(b);
    return c.receive(2s);
}

// keychaind --foreground under `prefix` (prlimit, setpriv), with a config of its own.
std::vector<std::string> daemon_argv(std::vector<std::string> prefix, const std::string& conf) {
    prefix.insert(prefix.end(), {DaemonProcess::binary(), "--foreground", "--config", conf});
    return prefix;
}

const std::vector<std::string> kWithoutIpcLock = {"setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock"};

// Fills the filesystem holding `path` with a file of that name; true when it hit ENOSPC.
bool fill_disk(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    const std::string chunk(1024, 'f');
    int err = 0;
    for (int i = 0; i < 100000 && err == 0; ++i)
        if (::write(fd, chunk.data(), chunk.size()) < 0) err = errno;
    ::close(fd);
    return err == ENOSPC;
}

}  // namespace

// --- locked memory -------------------------------------------------------------------------

TEST_CASE("without CAP_IPC_LOCK and with a 64 KiB RLIMIT_MEMLOCK the daemon refuses to start, naming both",
          "[integration]") {
    TempDir dir;
    const std::string conf = dir.file("keychaind.conf");
    const std::string sock = dir.file("s.sock");
    write_file(conf, "[daemon]\nsocket = \"" + sock + "\"\nsocket_group = \"\"\n[devices]\nenable = false\n");

    auto prefix = std::vector<std::string>{"prlimit", "--memlock=65536:65536"};
    prefix.insert(prefix.end(), kWithoutIpcLock.begin(), kWithoutIpcLock.end());
    ProcessOptions opts;
    opts.timeout = 20s;
    const auto r = run_process(daemon_argv(prefix, conf), opts);
    INFO(r.describe);
    CHECK(r.exit_code == 1);
    CHECK(r.all().find("cannot lock memory: RLIMIT_MEMLOCK is 65536 bytes and the daemon lacks CAP_IPC_LOCK") !=
          std::string::npos);
    CHECK(access(sock.c_str(), F_OK) != 0);  // it never listened

    SECTION("with CAP_IPC_LOCK the same 64 KiB limit does not apply: it starts and locks its memory") {
        BackgroundProcess d(daemon_argv({"prlimit", "--memlock=65536:65536"}, conf), dir.file("cap.log"));
        REQUIRE(d.wait_for_log("listening on " + sock, 20s));
        const uint64_t locked = status_kib(d.pid(), "VmLck");
        INFO(d.log());
        CHECK(locked > 64);  // more than the limit: the capability lifted it
        CHECK(d.stop(SIGTERM) == 0);
    }
    SECTION("without CAP_IPC_LOCK an unlimited RLIMIT_MEMLOCK is enough: it starts and locks its memory") {
        // Raising the hard limit needs CAP_SYS_RESOURCE (the CI machine's root has it).
        if (run_process({"prlimit", "--memlock=unlimited:unlimited", "true"}).exit_code != 0) {
            WARN("cannot raise RLIMIT_MEMLOCK here (no CAP_SYS_RESOURCE); the unlimited case is not tested");
            return;
        }
        auto unlimited = std::vector<std::string>{"prlimit", "--memlock=unlimited:unlimited"};
        unlimited.insert(unlimited.end(), kWithoutIpcLock.begin(), kWithoutIpcLock.end());
        BackgroundProcess d(daemon_argv(unlimited, conf), dir.file("nocap.log"));
        REQUIRE(d.wait_for_log("listening on " + sock, 20s));
        INFO(d.log());
        CHECK(status_kib(d.pid(), "VmLck") > 0);
        CHECK(d.stop(SIGTERM) == 0);
    }
}

// --- config at reload ----------------------------------------------------------------------

TEST_CASE("a half-written, unreadable or missing config at SIGHUP keeps the running one, then a good one applies",
          "[integration]") {
    KeysDaemon d(nlohmann::json({{"name", "first-key"}, {"encodedKey", std::string(64, 'e')}}).dump());
    DaemonProcess& daemon = *d.daemon;
    const std::string conf = daemon.config_path();
    const std::string good = read_file_text(conf);
    const std::string refused = "reload refused, keeping the running configuration: " + conf;

    // After each bad reload: the reason is logged naming the file, the key loaded by the running
    // configuration is still served, and nothing was reloaded.
    const auto reload_is_refused = [&](const std::string& reason) {
        const size_t before = count_of(daemon.log(), refused);
        const size_t before_reason = count_of(daemon.log(), refused + reason);
        daemon.signal(SIGHUP);
        REQUIRE(wait_for_another(daemon, refused, before));
        INFO(daemon.log());
        CHECK(count_of(daemon.log(), refused + reason) == before_reason + 1);
        auto w = req(Opcode::Wait);
        w.str(Tag::Label, "first-key").u32(Tag::TimeoutMs, 1000);
        const auto r = ask(d.socket(), std::move(w));
        REQUIRE(r);
        CHECK(r->msg.opcode == ok_opcode(Opcode::Wait));
        CHECK(daemon.log().find("configuration reloaded") == std::string::npos);
    };

    SECTION("half-written: cut inside a string, inside a table header") {
        const size_t in_string = good.find(d.keys_dir) + d.keys_dir.size() / 2;
        write_file(conf, good.substr(0, in_string));
        reload_is_refused(":");  // toml++'s "FILE:LINE: reason"
        write_file(conf, good + "[limi");
        reload_is_refused(":");
    }
    SECTION("unreadable: a directory, a FIFO, a symlink, a file over 1 MiB, no file") {
        const std::string kept = conf + ".good";
        REQUIRE(rename(conf.c_str(), kept.c_str()) == 0);
        REQUIRE(mkdir(conf.c_str(), 0700) == 0);
        reload_is_refused(": is not a regular file");
        REQUIRE(rmdir(conf.c_str()) == 0);

        // Nobody ever writes to it: opening it for reading without O_NONBLOCK would hang the loop.
        REQUIRE(mkfifo(conf.c_str(), 0600) == 0);
        reload_is_refused(": is not a regular file");
        REQUIRE(unlink(conf.c_str()) == 0);

        REQUIRE(symlink(kept.c_str(), conf.c_str()) == 0);
        reload_is_refused(": is a symbolic link; name the file itself");
        REQUIRE(unlink(conf.c_str()) == 0);

        write_file(conf, good + "# " + std::string(1024 * 1024, 'x') + "\n");
        reload_is_refused(": is larger than 1048576 bytes");
        REQUIRE(unlink(conf.c_str()) == 0);

        reload_is_refused(": cannot open: No such file or directory");
    }

    // A good config, with a second key directory, is then read and takes effect.
    const std::string extra = d.dir.file("extra");
    REQUIRE(mkdir(extra.c_str(), 0700) == 0);
    write_file(extra + "/x.4DKeyChain",
               nlohmann::json({{"name", "extra-key"}, {"encodedKey", std::string(64, 'f')}}).dump());
    std::string next = good;
    const std::string dirs = "directories = [\"" + d.keys_dir + "\"";
    REQUIRE(next.find(dirs) != std::string::npos);
    next.replace(next.find(dirs), dirs.size(), dirs + ", \"" + extra + "\"");
    write_file(conf, next);
    daemon.signal(SIGHUP);
    REQUIRE(daemon.wait_for_log("configuration reloaded from " + conf, 5s));
    auto w = req(Opcode::Wait);
    w.str(Tag::Label, "extra-key").u32(Tag::TimeoutMs, 5000);
    const auto r = ask(d.socket(), std::move(w));
    REQUIRE(r);
    CHECK(r->msg.opcode == ok_opcode(Opcode::Wait));
}

// --- audit on a full disk ------------------------------------------------------------------

namespace {

// A daemon whose audit file is on a 16 KiB tmpfs; `mounted` false when no tmpfs can be made.
struct FullDiskDaemon {
    TempDir dir;
    std::string mnt = dir.file("audit");
    std::string audit_file = mnt + "/audit.log";
    std::unique_ptr<TinyTmpfs> fs;
    std::unique_ptr<DaemonProcess> daemon;

    explicit FullDiskDaemon(const std::string& on_failure) {
        REQUIRE(mkdir(mnt.c_str(), 0700) == 0);
        fs = std::make_unique<TinyTmpfs>(mnt, "16k");
        if (!fs->mounted()) return;
        const std::string keys = dir.file("keys");
        REQUIRE(mkdir(keys.c_str(), 0700) == 0);
        write_file(keys + "/k.4DKeyChain", nlohmann::json({{"name", "kek"}, {"encodedKey", std::string(64, 'a')}}).dump());
        daemon = std::make_unique<DaemonProcess>(
            dir.path(), "[keys]\ndirectories = [\"" + keys + "\"]\n[audit]\ntarget = \"file\"\nfile = \"" +
                            audit_file + "\"\non_failure = \"" + on_failure + "\"\n");
    }
    ~FullDiskDaemon() { daemon.reset(); }  // before the tmpfs goes
    // LIST_KEYS: its decision is audited (STATUS is not). 0: answered.
    uint8_t list_error() const {
        const auto r = ask(daemon->socket_path(), req(Opcode::ListKeys));
        REQUIRE(r);
        return r->error_code();
    }
    size_t audit_lines() const { return count_of(read_file_text(audit_file), "\n"); }
    // Once the disk is full, records still fill the audit file's last page: LIST_KEYS until one
    // is not recorded. Returns its error code (0: answered) and how many were recorded before.
    std::pair<uint8_t, int> list_until_audit_fails() const {
        const std::string failed = "audit: cannot write " + audit_file;
        for (int i = 0; i < 100; ++i) {
            const uint8_t e = list_error();
            if (e != 0 || daemon->log().find(failed) != std::string::npos) return {e, i};
        }
        FAIL("100 LIST_KEYS were all recorded on a full disk");
        return {};
    }
};

}  // namespace

TEST_CASE("audit on_failure = continue: a full audit disk is logged once, requests are served, recovery is logged",
          "[integration]") {
    FullDiskDaemon d("continue");
    if (!d.fs->mounted()) {
        WARN("cannot mount a tmpfs here (" + d.fs->error() + "); the full-disk case is not tested");
        return;
    }
    REQUIRE(d.list_error() == 0);
    const std::string filler = d.mnt + "/filler";
    REQUIRE(fill_disk(filler));
    CHECK(d.list_until_audit_fails().first == 0);
    const size_t lines = d.audit_lines();
    for (int i = 0; i < 5; ++i) CHECK(d.list_error() == 0);
    CHECK(d.audit_lines() == lines);  // nothing could be written
    INFO(d.daemon->log());
    CHECK(count_of(d.daemon->log(), "audit: cannot write " + d.audit_file +
                                        ": No space left on device; serving continues") == 1);

    REQUIRE(unlink(filler.c_str()) == 0);
    CHECK(d.list_error() == 0);
    CHECK(d.audit_lines() == lines + 1);
    CHECK(count_of(d.daemon->log(), "audit: records are written again") == 1);
}

TEST_CASE("audit on_failure = deny: requests are refused while the audit disk is full, served again once it "
          "is not",
          "[integration]") {
    FullDiskDaemon d("deny");
    if (!d.fs->mounted()) {
        WARN("cannot mount a tmpfs here (" + d.fs->error() + "); the full-disk case is not tested");
        return;
    }
    REQUIRE(d.list_error() == 0);
    auto g = req(Opcode::GenerateDataKey);
    g.str(Tag::Label, "kek");
    const auto generated = ask(d.daemon->socket_path(), std::move(g));
    REQUIRE(generated);
    REQUIRE(generated->error_code() == 0);
    const auto wrapped_field = *generated->msg.get(Tag::Wrapped);
    const Bytes wrapped(wrapped_field.begin(), wrapped_field.end());
    const auto unwrap_reply = [&] {
        auto u = req(Opcode::Unwrap);
        u.bytes(Tag::Wrapped, wrapped);
        auto r = ask(d.daemon->socket_path(), std::move(u));
        REQUIRE(r);
        return std::move(*r);
    };
    const std::string denied_log = "audit: cannot write " + d.audit_file +
                                   ": No space left on device; requests are refused until records can be "
                                   "written (on_failure = \"deny\")";

    // Another file fills the disk; freeing it is enough.
    const std::string filler = d.mnt + "/filler";
    REQUIRE(fill_disk(filler));
    CHECK(d.list_until_audit_fails().first == uint8_t(ErrorCode::Denied));
    {
        const auto r = ask(d.daemon->socket_path(), req(Opcode::ListKeys));
        REQUIRE(r);
        CHECK(r->error_code() == uint8_t(ErrorCode::Denied));
        CHECK(r->error_message() == "LIST_KEYS denied: the audit log cannot be written");
    }
    {
        const Reply r = unwrap_reply();  // a key operation: the decision on the key is not recorded
        CHECK(r.error_code() == uint8_t(ErrorCode::Denied));
        CHECK_THAT(r.error_message(), Catch::EndsWith("(\"kek\") denied: the audit log cannot be written"));
    }
    INFO(d.daemon->log());
    CHECK(count_of(d.daemon->log(), denied_log) == 1);
    REQUIRE(unlink(filler.c_str()) == 0);
    CHECK(unwrap_reply().error_code() == 0);
    CHECK(d.list_error() == 0);
    CHECK(count_of(d.daemon->log(), "audit: records are written again") == 1);

    // The audit file itself fills the disk. Removing it frees nothing while the daemon holds it
    // open; SIGHUP reopens a fresh file and closes the old one.
    REQUIRE(fill_disk(d.audit_file));
    CHECK(d.list_error() == uint8_t(ErrorCode::Denied));
    REQUIRE(unlink(d.audit_file.c_str()) == 0);
    CHECK(d.list_error() == uint8_t(ErrorCode::Denied));
    d.daemon->signal(SIGHUP);
    REQUIRE(d.daemon->wait_for_log("configuration reloaded", 5s));
    CHECK(d.list_error() == 0);
    CHECK(count_of(d.daemon->log(), denied_log) == 2);
    CHECK(count_of(d.daemon->log(), "audit: records are written again") == 2);
    // The LIST_KEYS that was served is in the new file.
    CHECK(read_file_text(d.audit_file).find("\"op\":\"list\",\"result\":\"allow\"") != std::string::npos);
}
