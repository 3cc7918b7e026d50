// The audit file target: whole lines appended, 0600, rotation, refusals, concurrency, a full disk.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_log.h"
#include "captured_stderr.h"
#include "temp_dir.h"
#include "tiny_tmpfs.h"

using keychaind::AuditConfig;
using keychaind::AuditLog;
using keychaind::AuditRecord;
using keychaind::test::CapturedStderr;
using keychaind::test::TempDir;
using keychaind::test::TinyTmpfs;

namespace {

AuditConfig file_target(const std::string& path, const std::string& target = "file") {
    AuditConfig c;
    c.target = target;
    c.file = path;
    return c;
}

std::vector<std::string> audit_file_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

std::string audit_file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("the audit file gets one line per record, created 0600") {
    TempDir dir("audit-file");
    const std::string path = dir.file("audit.log");
    {
        AuditLog log(file_target(path));
        log.write(AuditRecord("policy-loaded").add("source", "built-in"));
        log.write(AuditRecord("key-added").add("label", "line\nbreak"));
    }
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    const auto lines = audit_file_lines(path);
    REQUIRE(lines.size() == 2);
    CHECK(nlohmann::json::parse(lines[0])["event"] == "policy-loaded");
    CHECK(nlohmann::json::parse(lines[1])["label"] == "line\nbreak");

    // A second daemon run appends.
    {
        AuditLog log(file_target(path));
        log.write(AuditRecord("policy-loaded"));
    }
    CHECK(audit_file_lines(path).size() == 3);
}

TEST_CASE("reopen after the file was renamed writes to a new file") {
    TempDir dir("audit-rotate");
    const std::string path = dir.file("audit.log");
    AuditLog log(file_target(path));
    log.write(AuditRecord("before"));
    REQUIRE(::rename(path.c_str(), dir.file("audit.log.1").c_str()) == 0);
    log.write(AuditRecord("still-old"));  // until SIGHUP, the renamed file
    log.reopen();
    log.write(AuditRecord("after"));

    const auto old_lines = audit_file_lines(dir.file("audit.log.1"));
    REQUIRE(old_lines.size() == 2);
    CHECK(nlohmann::json::parse(old_lines[0])["event"] == "before");
    CHECK(nlohmann::json::parse(old_lines[1])["event"] == "still-old");
    const auto new_lines = audit_file_lines(path);
    REQUIRE(new_lines.size() == 1);
    CHECK(nlohmann::json::parse(new_lines[0])["event"] == "after");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("a reopen that fails keeps writing to the open file") {
    TempDir dir("audit-reopen-fail");
    const std::string path = dir.file("audit.log");
    AuditLog log(file_target(path));
    REQUIRE(::rename(path.c_str(), dir.file("old.log").c_str()) == 0);
    REQUIRE(::symlink("/etc/passwd", path.c_str()) == 0);
    CapturedStderr err;
    log.reopen();
    log.write(AuditRecord("kept"));
    CHECK(err.lines_with("symlink") == 1);
    CHECK(audit_file_lines(dir.file("old.log")).size() == 1);
}

TEST_CASE("a symlink or a non-regular file at the audit path is refused") {
    TempDir dir("audit-refuse");
    const std::string target = dir.file("elsewhere");
    { std::ofstream(target) << ""; }
    const std::string link = dir.file("audit.log");
    REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
    CHECK_THROWS_WITH(AuditLog(file_target(link)), Catch::Contains("symlink"));
    CHECK(audit_file_text(target).empty());

    const std::string fifo = dir.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(AuditLog(file_target(fifo)), Catch::Contains("not a regular file"));
    CHECK_THROWS_WITH(AuditLog(file_target(dir.path())), Catch::Contains(dir.path()));
    CHECK_THROWS_WITH(AuditLog(file_target(dir.file("no/such/dir.log"))),
                      Catch::Contains("No such file or directory"));
}

TEST_CASE("audit targets are checked") {
    TempDir dir("audit-targets");
    CHECK_THROWS_WITH(AuditLog(file_target("", "file")), Catch::Contains("needs an audit file"));
    CHECK_THROWS_WITH(AuditLog(file_target("", "both")), Catch::Contains("needs an audit file"));
    CHECK_THROWS_WITH(AuditLog(file_target(dir.file("a.log"), "syslog")),
                      Catch::Contains("syslog"));
    // "off" writes nothing, even with a file named.
    {
        AuditLog off(file_target(dir.file("off.log"), "off"));
        off.write(AuditRecord("x"));
    }
    CHECK(::access(dir.file("off.log").c_str(), F_OK) != 0);
}

TEST_CASE("auto without a journal uses the file, or warns once and keeps nothing") {
    struct stat st {};
    if (::stat("/run/systemd/journal/socket", &st) == 0) {
        WARN("a journal is running here; the no-journal case is not tested");
        return;
    }
    TempDir dir("audit-auto");
    {
        AuditLog log(file_target(dir.file("auto.log"), "auto"));
        log.write(AuditRecord("x"));
    }
    CHECK(audit_file_lines(dir.file("auto.log")).size() == 1);

    CapturedStderr err;
    AuditLog none(file_target("", "auto"));
    none.write(AuditRecord("x"));
    none.write(AuditRecord("y"));
    CHECK(err.lines_with("audit: no journal and no [audit] file; audit records are not kept") == 1);
}

TEST_CASE("8 threads writing 500 records each leave 4000 whole lines") {
    TempDir dir("audit-threads");
    const std::string path = dir.file("audit.log");
    AuditLog log(file_target(path));
    // Long enough values that an interleaved write would show.
    const std::string filler(700, 'f');
    std::vector<std::thread> threads;
    for (long long t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (long long i = 0; i < 500; ++i)
                log.write(
                    AuditRecord("decision").add("thread", t).add("seq", i).add("filler", filler));
        });
    for (auto& th : threads) th.join();

    const auto lines = audit_file_lines(path);
    REQUIRE(lines.size() == 4000);
    std::set<std::pair<long long, long long>> seen;
    for (const auto& line : lines) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        REQUIRE_FALSE(j.is_discarded());
        CHECK(j["filler"] == filler);
        seen.emplace(j["thread"].get<long long>(), j["seq"].get<long long>());
    }
    CHECK(seen.size() == 4000);
}

TEST_CASE("a full disk is logged once, serving continues, and recovery is logged") {
    TempDir dir("audit-full");
    const std::string mnt = dir.file("mnt");
    REQUIRE(::mkdir(mnt.c_str(), 0700) == 0);
    TinyTmpfs fs(mnt, "16k");
    if (!fs.mounted()) {
        WARN("cannot mount a tmpfs here (" + fs.error() + "); the full-disk case is not tested");
        return;
    }
    const std::string path = mnt + "/audit.log";
    AuditLog log(file_target(path));
    CapturedStderr err;
    const std::string filler(300, 'x');
    int refused = 0;
    for (int i = 0; i < 200; ++i)
        if (!log.write(AuditRecord("decision").add("seq", static_cast<long long>(i)).add("filler", filler)))
            ++refused;
    CHECK(refused > 0);  // write() tells the caller, for [audit] on_failure = "deny"

    CHECK(err.lines_with("audit: cannot write " + path +
                         ": No space left on device; serving continues") == 1);
    CHECK(err.lines_with("error") == 1);
    // Only whole lines: a record that did not fit is not left half-written.
    const std::string text = audit_file_text(path);
    REQUIRE_FALSE(text.empty());
    CHECK(text.back() == '\n');
    const auto lines = audit_file_lines(path);
    CHECK(lines.size() < 200);
    for (const auto& line : lines)
        CHECK_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded());

    // Space again: the next record is written and the log says so, once.
    REQUIRE(::truncate(path.c_str(), 0) == 0);
    CHECK(log.write(AuditRecord("after")));
    log.write(AuditRecord("after2"));
    CHECK(err.lines_with("audit: records are written again") == 1);
    const auto after = audit_file_lines(path);
    REQUIRE(after.size() == 2);
    CHECK(nlohmann::json::parse(after[0])["event"] == "after");

    // A new failure streak is logged again.
    for (int i = 0; i < 200; ++i) log.write(AuditRecord("decision").add("filler", filler));
    CHECK(err.lines_with("No space left on device") == 2);
}
