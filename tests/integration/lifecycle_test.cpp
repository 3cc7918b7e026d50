// Integration: start-up, memory protection, signals, reload.
#include <signal.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon_fixture.h"
#include "process_inspection.h"

using namespace keychaind;
using namespace keychaind::test;
using wire::Opcode;
using wire::Tag;

namespace {
std::string proc_status_field(pid_t pid, const std::string& name) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
    return {};
}

// A copy of keychaind that nobody (65534) may run: the build tree may sit under a directory only
// root may enter (a CI checkout in a 0700 mktemp directory).
std::string daemon_copy_for_nobody(const TempDir& dir) {
    const std::string bin = dir.path() + "/keychaind";
    std::filesystem::copy_file(DaemonProcess::binary(), bin);
    REQUIRE(chmod(bin.c_str(), 0755) == 0);
    return bin;
}
}  // namespace

TEST_CASE("the daemon's memory is locked", "[integration]") {
    KeysDaemon d(nlohmann::json({{"encodedKey", std::string(64, 'b')}}).dump());
    CHECK(status_kib(d.daemon->pid(), "VmLck") > 0);
}

TEST_CASE("the daemon is not dumpable: /proc entries of a non-root daemon belong to root", "[integration]") {
    // A non-dumpable process's /proc files are owned by root whatever its uid; run the daemon as
    // nobody so the difference shows.
    TempDir dir;
    REQUIRE(chown(dir.path().c_str(), 65534, 65534) == 0);
    const std::string conf = dir.path() + "/keychaind.conf";
    write_file(conf, "[daemon]\nsocket = \"" + dir.path() + "/s.sock\"\nsocket_group = \"\"\nallow_unlocked_memory = true\n");
    REQUIRE(chown(conf.c_str(), 65534, 65534) == 0);
    const std::string bin = daemon_copy_for_nobody(dir);
    const pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(126);
        execl(bin.c_str(), bin.c_str(), "--foreground", "--config", conf.c_str(), nullptr);
        _exit(127);
    }
    std::string uid_line;
    for (int i = 0; i < 500 && access((dir.path() + "/s.sock").c_str(), F_OK) != 0; ++i) usleep(10000);
    REQUIRE(access((dir.path() + "/s.sock").c_str(), F_OK) == 0);  // it runs, as nobody
    uid_line = proc_status_field(pid, "Uid");
    struct stat st {};
    REQUIRE(stat(("/proc/" + std::to_string(pid) + "/status").c_str(), &st) == 0);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    INFO("Uid:" << uid_line);
    CHECK(std::stoi(uid_line) == 65534);
    CHECK(st.st_uid == 0);
    CHECK(WIFEXITED(status));
}

TEST_CASE("a crash leaves no core dump: SIGSEGV kills the daemon without one", "[integration]") {
    // The daemon inherits an unlimited core size from here, so only its own settings (RLIMIT_CORE
    // 0, not dumpable) can keep the kernel from writing its memory, keys included, to a core file.
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    REQUIRE(setrlimit(RLIMIT_CORE, &unlimited) == 0);
    KeysDaemon d(nlohmann::json({{"encodedKey", std::string(64, 'c')}}).dump());
    const pid_t pid = d.daemon->pid();
    std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
    std::string line, core_line;
    while (std::getline(limits, line))
        if (line.rfind("Max core file size", 0) == 0) core_line = line;
    INFO(core_line);
    std::istringstream fields(core_line.substr(std::string("Max core file size").size()));
    std::string soft, hard;
    fields >> soft >> hard;
    CHECK(soft == "0");
    CHECK(hard == "0");
    const std::string cwd = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd");
    const auto cores_before = std::distance(std::filesystem::directory_iterator(cwd), {});
    const int status = d.daemon->stop(SIGSEGV);
    REQUIRE(WIFSIGNALED(status));
#if defined(KEYCHAIND_SANITIZED_BUILD)
    // ASan catches the SIGSEGV, reports it and aborts (abort_on_error): still a crash.
    CHECK((WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT));
#else
    CHECK(WTERMSIG(status) == SIGSEGV);
#endif
    CHECK_FALSE(WCOREDUMP(status));
    CHECK(std::distance(std::filesystem::directory_iterator(cwd), {}) == cores_before);
    CHECK_FALSE(std::filesystem::exists(cwd + "/core"));
    CHECK_FALSE(std::filesystem::exists(cwd + "/core." + std::to_string(pid)));
}

TEST_CASE("a non-root daemon that cannot lock memory refuses to start", "[integration]") {
    TempDir dir;
    REQUIRE(chown(dir.path().c_str(), 65534, 65534) == 0);
    const std::string conf = dir.path() + "/keychaind.conf";
    write_file(conf, "[daemon]\nsocket = \"" + dir.path() + "/s.sock\"\nsocket_group = \"\"\n");
    REQUIRE(chown(conf.c_str(), 65534, 65534) == 0);
    const std::string bin = daemon_copy_for_nobody(dir);
    const pid_t pid = fork();
    if (pid == 0) {
        const int fd = open((dir.path() + "/out").c_str(), O_WRONLY | O_CREAT, 0666);
        dup2(fd, 2);
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(126);
        execl(bin.c_str(), bin.c_str(), "--foreground", "--config", conf.c_str(), nullptr);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::ifstream in(dir.path() + "/out");
    std::stringstream out;
    out << in.rdbuf();
    INFO(out.str());
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    CHECK(out.str().find("cannot lock memory") != std::string::npos);
}

TEST_CASE("SIGTERM empties the keychain, removes the socket and exits 0", "[integration]") {
    KeysDaemon d(nlohmann::json({{"encodedKey", std::string(64, 'c')}}).dump());
    const std::string sock = d.socket();
    const int status = d.daemon->stop(SIGTERM);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(access(sock.c_str(), F_OK) != 0);
    CHECK(d.daemon->log().find("key removed (shutdown)") != std::string::npos);
}

TEST_CASE("a config error at start exits non-zero naming file, line and reason", "[integration]") {
    TempDir dir;
    const std::string conf = dir.path() + "/bad.conf";
    write_file(conf, "[daemon]\nsocket = \"" + dir.path() + "/s.sock\"\nsocket_group = \"\"\n[limits]\nmax_in_flight = 0\n");
    const auto r = run_daemon_to_exit(conf, std::chrono::seconds(10));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(conf + ":5: max_in_flight is 0") != std::string::npos);

    write_file(conf, "[daemon]\nsockett = \"x\"\n");
    const auto r2 = run_daemon_to_exit(conf, std::chrono::seconds(10));
    CHECK(r2.exit_code == 2);
    CHECK(r2.output.find(conf + ":2: unknown option \"sockett\"") != std::string::npos);

    write_file(conf, "[daemon\n");
    const auto r3 = run_daemon_to_exit(conf, std::chrono::seconds(10));
    CHECK(r3.exit_code == 2);
    CHECK(r3.output.find(conf + ":1:") != std::string::npos);
}

TEST_CASE("SIGHUP reloads a good config and keeps the old one when the new one is bad", "[integration]") {
    KeysDaemon d("");
    const std::string extra = d.dir.path() + "/extra";
    mkdir(extra.c_str(), 0700);
    write_file(extra + "/x.4DKeyChain", nlohmann::json({{"name", "extra-key"}, {"encodedKey", std::string(64, 'd')}}).dump());
    const std::string good = std::string("[daemon]\nsocket = \"") + d.socket() +
                             "\"\nsocket_group = \"\"\n[keys]\ndirectories = [\"" + d.keys_dir + "\", \"" + extra + "\"]\n";
    write_file(d.daemon->config_path(), "[daemon]\nsocket = 12\n");
    d.daemon->signal(SIGHUP);
    REQUIRE(d.daemon->wait_for_log("reload refused", std::chrono::seconds(5)));
    CHECK(d.daemon->log().find("keychaind.conf:2: socket must be a string") != std::string::npos);
    CHECK(request(d.socket(), req(Opcode::Status)).msg.opcode == ok_opcode(Opcode::Status));

    write_file(d.daemon->config_path(), good);
    d.daemon->signal(SIGHUP);
    REQUIRE(d.daemon->wait_for_log("configuration reloaded", std::chrono::seconds(5)));
    REQUIRE(d.daemon->wait_for_log("label=\"extra-key\"", std::chrono::seconds(5)));
    auto w = req(Opcode::Wait);
    w.str(Tag::Label, "extra-key").u32(Tag::TimeoutMs, 5000);
    CHECK(request(d.socket(), std::move(w)).msg.opcode == ok_opcode(Opcode::Wait));
}
