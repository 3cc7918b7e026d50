// The config's [audit] section and [daemon] policy option, and how the config file is read.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "config/config.h"
#include "temp_dir.h"

using keychaind::ConfigError;
using keychaind::load_config;
using keychaind::test::TempDir;

namespace {

std::string write_config_file(const TempDir& dir, const std::string& text) {
    const std::string path = dir.file("keychaind.conf");
    std::ofstream(path) << text;
    return path;
}

}  // namespace

TEST_CASE("without [audit] or policy the defaults apply") {
    TempDir dir("audit-config");
    const auto c = load_config(write_config_file(dir, "[limits]\nmax_in_flight = 4\n"));
    CHECK(c.audit.target == "auto");
    CHECK(c.audit.file.empty());
    CHECK(c.policy_path == "/etc/keychaind/policy.conf");
    CHECK_FALSE(c.policy_path_set);
}

TEST_CASE("[audit] target and file are read, the file relative to the config") {
    TempDir dir("audit-config");
    auto c = load_config(
        write_config_file(dir, "[audit]\ntarget = \"both\"\nfile = \"log/audit.log\"\n"));
    CHECK(c.audit.target == "both");
    CHECK(c.audit.file == dir.file("log/audit.log"));
    c = load_config(write_config_file(
        dir, "[audit]\ntarget = \"file\"\nfile = \"/var/log/keychaind/audit.log\"\n"));
    CHECK(c.audit.file == "/var/log/keychaind/audit.log");
    for (const char* t : {"auto", "journal", "off"}) {
        c = load_config(write_config_file(dir, std::string("[audit]\ntarget = \"") + t + "\"\n"));
        CHECK(c.audit.target == t);
    }
}

TEST_CASE("[audit] on_failure is continue by default, or deny") {
    TempDir dir("audit-config");
    auto c = load_config(write_config_file(dir, "[audit]\ntarget = \"off\"\n"));
    CHECK(c.audit.on_failure == "continue");
    CHECK_FALSE(c.audit.deny_on_failure());
    c = load_config(write_config_file(dir, "[audit]\non_failure = \"deny\"\n"));
    CHECK(c.audit.on_failure == "deny");
    CHECK(c.audit.deny_on_failure());
    c = load_config(write_config_file(dir, "[audit]\non_failure = \"continue\"\n"));
    CHECK_FALSE(c.audit.deny_on_failure());
    std::string path = write_config_file(dir, "[audit]\n\non_failure = \"halt\"\n");
    CHECK_THROWS_WITH(load_config(path), path + ":3: on_failure \"halt\" is not one of continue, deny");
    path = write_config_file(dir, "[audit]\non_failure = true\n");
    CHECK_THROWS_WITH(load_config(path), path + ":2: on_failure must be a string");
}

TEST_CASE("the config file must be a regular file, not a symlink, at most 1 MiB") {
    TempDir dir("audit-config");
    const std::string good = write_config_file(dir, "[limits]\nmax_in_flight = 4\n");
    const std::string link = dir.file("link.conf");
    REQUIRE(symlink(good.c_str(), link.c_str()) == 0);
    CHECK_THROWS_WITH(load_config(link), link + ": is a symbolic link; name the file itself");
    CHECK_THROWS_WITH(load_config(dir.path()), dir.path() + ": is not a regular file");
    // A FIFO nobody writes to: refused at once, never waited on.
    const std::string fifo = dir.file("fifo.conf");
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(load_config(fifo), fifo + ": is not a regular file");
    const std::string missing = dir.file("missing.conf");
    CHECK_THROWS_WITH(load_config(missing), missing + ": cannot open: No such file or directory");
    const std::string big = dir.file("big.conf");
    std::ofstream(big) << "# " << std::string(keychaind::kMaxConfigFileBytes, 'x') << "\n";
    CHECK_THROWS_WITH(load_config(big), big + ": is larger than 1048576 bytes");
    // Just under the cap is read.
    std::ofstream(big, std::ios::trunc) << "# " << std::string(keychaind::kMaxConfigFileBytes - 3, 'x') << "\n";
    CHECK(load_config(big).max_in_flight == 128);
}

TEST_CASE("bad [audit] options name the file and line") {
    TempDir dir("audit-config");
    std::string path = write_config_file(dir, "[audit]\n\ntarget = \"syslog\"\n");
    CHECK_THROWS_WITH(load_config(path),
                      path + ":3: target \"syslog\" is not one of auto, journal, file, both, off");
    path = write_config_file(dir, "[audit]\ntarget = \"file\"\n");
    CHECK_THROWS_WITH(load_config(path),
                      path + ":2: target \"file\" needs file, the audit log's path");
    path = write_config_file(dir, "[audit]\ntarget = \"both\"\n");
    CHECK_THROWS_AS(load_config(path), ConfigError);
    path = write_config_file(dir, "[audit]\nfile = \"\"\n");
    CHECK_THROWS_WITH(load_config(path), path + ":2: a path must not be empty");
    path = write_config_file(dir, "[audit]\ntarget = 1\n");
    CHECK_THROWS_WITH(load_config(path), path + ":2: target must be a string");
    path = write_config_file(dir, "[audit]\nfiles = \"x\"\n");
    CHECK_THROWS_WITH(load_config(path), path + ":2: unknown option \"files\" in [audit]");
}

TEST_CASE("[daemon] policy names a file that must exist, or \"\" for the built-in policy") {
    TempDir dir("audit-config");
    std::ofstream(dir.file("policy.conf")) << "";
    auto c = load_config(
        write_config_file(dir, "[daemon]\nsocket_group = \"\"\npolicy = \"policy.conf\"\n"));
    CHECK(c.policy_path == dir.file("policy.conf"));
    CHECK(c.policy_path_set);

    c = load_config(write_config_file(dir, "[daemon]\nsocket_group = \"\"\npolicy = \"\"\n"));
    CHECK(c.policy_path.empty());
    CHECK(c.policy_path_set);

    const std::string path = write_config_file(
        dir, "[daemon]\nsocket_group = \"\"\npolicy = \"/nonexistent/policy.conf\"\n");
    CHECK_THROWS_WITH(load_config(path),
                      Catch::StartsWith(path + ":3: policy file /nonexistent/policy.conf "
                                               "does not exist"));
}

TEST_CASE("a config parsed from text reads as that file would: its path in errors, paths relative to it") {
    TempDir dir("audit-config");
    const std::string path = dir.file("keychaind.conf");
    const auto c = keychaind::parse_config("[audit]\ntarget = \"file\"\nfile = \"log/audit.log\"\n", path);
    CHECK(c.path == path);
    CHECK(c.audit.file == dir.file("log/audit.log"));
    CHECK_THROWS_WITH(keychaind::parse_config("[audit]\n\ntarget = 1\n", "/etc/keychaind/x.conf"),
                      "/etc/keychaind/x.conf:3: target must be a string");
    CHECK(keychaind::parse_config("", path).audit.target == "auto");
}

TEST_CASE("a config file that cannot be read is refused with its path and the reason") {
    TempDir dir("audit-config");
    const std::string missing = dir.file("missing.conf");
    CHECK_THROWS_WITH(load_config(missing), missing + ": cannot open: No such file or directory");
}
