// Policy::load: only a plain file, not too large, that nobody but root (or the daemon) can write.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "policy_test_support.h"
#include "temp_dir.h"

using namespace keychaind::policy_test;
using Catch::Contains;
using keychaind::policy::kMaxPolicyFileBytes;
using keychaind::test::TempDir;

namespace {
constexpr const char* kValid =
    "[[rule]]\nname = \"r\"\npeer = \"any\"\noperations = [\"list\"]\nkeys = \"any\"\n";

void put_file(const std::string& path, std::string_view content, mode_t mode) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    f.close();
    if (!f || chmod(path.c_str(), mode) != 0) throw std::runtime_error("cannot write " + path);
}
}  // namespace

TEST_CASE("load reads a good policy file and names it as the source", "[policy][load]") {
    TempDir dir("keychaind-policy");
    put_file(dir.file("policy.conf"), kValid, 0644);
    const auto p = Policy::load(dir.file("policy.conf"));
    REQUIRE(p->source() == dir.file("policy.conf"));
    REQUIRE(p->rule_count() == 1);
}

TEST_CASE("load errors carry the path and the line", "[policy][load]") {
    TempDir dir("keychaind-policy");
    put_file(
        dir.file("policy.conf"),
        std::string(kValid) + "[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"nope\"]\n",
        0600);
    REQUIRE_THROWS_WITH(Policy::load(dir.file("policy.conf")),
                        Contains(dir.file("policy.conf") + ":9: "));
}

TEST_CASE("load refuses a symlink, even to a good file", "[policy][load]") {
    TempDir dir("keychaind-policy");
    put_file(dir.file("real.conf"), kValid, 0644);
    REQUIRE(symlink(dir.file("real.conf").c_str(), dir.file("policy.conf").c_str()) == 0);
    REQUIRE_THROWS_WITH(Policy::load(dir.file("policy.conf")),
                        Contains(dir.file("policy.conf")) && Contains("symbolic link"));
}

TEST_CASE("load refuses a file group or others may write", "[policy][load]") {
    TempDir dir("keychaind-policy");
    put_file(dir.file("policy.conf"), kValid, 0664);
    REQUIRE_THROWS_WITH(Policy::load(dir.file("policy.conf")),
                        Contains(dir.file("policy.conf")) &&
                            Contains("writable by group or others") && Contains("0664"));
    REQUIRE(chmod(dir.file("policy.conf").c_str(), 0646) == 0);
    REQUIRE_THROWS_AS(Policy::load(dir.file("policy.conf")), PolicyError);
    REQUIRE(chmod(dir.file("policy.conf").c_str(), 0644) == 0);
    REQUIRE_NOTHROW(Policy::load(dir.file("policy.conf")));
}

TEST_CASE("load refuses a file over 1 MiB", "[policy][load]") {
    TempDir dir("keychaind-policy");
    // Comments only: the size, not the content, is what is refused.
    std::string big = kValid;
    while (big.size() <= kMaxPolicyFileBytes) big += "# " + std::string(77, 'x') + "\n";
    put_file(dir.file("policy.conf"), big, 0644);
    REQUIRE_THROWS_WITH(Policy::load(dir.file("policy.conf")),
                        Contains(dir.file("policy.conf")) && Contains("larger than 1048576 bytes"));
    big.resize(kMaxPolicyFileBytes);
    big.back() = '\n';
    put_file(dir.file("policy.conf"), big, 0644);
    REQUIRE_NOTHROW(Policy::load(dir.file("policy.conf")));
}

TEST_CASE("load refuses what is not a regular file, without blocking on a FIFO", "[policy][load]") {
    TempDir dir("keychaind-policy");
    REQUIRE(mkfifo(dir.file("fifo").c_str(), 0600) == 0);
    REQUIRE_THROWS_WITH(Policy::load(dir.file("fifo")), Contains("is not a regular file"));
    REQUIRE_THROWS_WITH(Policy::load(dir.path()), Contains("is not a regular file"));
    REQUIRE_THROWS_WITH(Policy::load(dir.file("missing.conf")),
                        Contains(dir.file("missing.conf")) && Contains("No such file"));
}

TEST_CASE("load refuses a file owned by another user", "[policy][load]") {
    if (geteuid() != 0) {
        WARN("needs root to give the file away; skipped");
        return;
    }
    TempDir dir("keychaind-policy");
    put_file(dir.file("policy.conf"), kValid, 0644);
    REQUIRE(chown(dir.file("policy.conf").c_str(), 65534, 65534) == 0);
    REQUIRE_THROWS_WITH(Policy::load(dir.file("policy.conf")),
                        Contains("owned by uid 65534") && Contains("root or to the daemon's user"));
}
