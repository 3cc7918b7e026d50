// DirectorySource: scanning directories into a keychain, and letting go of deleted files.
#include "file/directory_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/keychain.h"
#include "file_test_support.h"
#include "temp_dir.h"

using namespace keychaind;
using namespace keychaind::file;
using keychaind::test::none_shares;
using keychaind::test::put_file;
using keychaind::test::TempDir;
using nlohmann::json;

namespace {

std::string hex_key(char digit) { return std::string(64, digit); }

std::string entry(char digit, const std::string& name, bool tethered) {
    return json({{"encodedKey", hex_key(digit)}, {"name", name}, {"tethered", tethered}}).dump();
}

bool has_label(const Keychain& kc, const std::string& label) {
    return kc.info(KeySelector{std::nullopt, label}).has_value();
}

bool any_contains(const std::vector<std::string>& lines, std::string_view needle) {
    for (const auto& l : lines)
        if (l.find(needle) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("DirectorySource adds the keys of every keychain file and reports the bad ones",
          "[file][directory]") {
    TempDir dir;
    put_file(dir.file("a.4DKeyChain"),
             "[" + entry('a', "a", false) + "," + entry('b', "b", false) + "]");
    put_file(dir.file("KEYS.4dkeychain"), entry('c', "c", false));
    put_file(dir.file("broken.4DKeyChain"), "{\"encodedKey\": ");
    put_file(dir.file("partial.4DKeyChain"), R"([{"encodedKey": ")" + std::string(63, 'd') +
                                                 R"("}, )" + entry('e', "e", false) + "]");
    REQUIRE(symlink(dir.file("a.4DKeyChain").c_str(), dir.file("link.4DKeyChain").c_str()) == 0);
    REQUIRE(mkfifo(dir.file("pipe.4DKeyChain").c_str(), 0600) == 0);
    REQUIRE(mkdir(dir.file("sub").c_str(), 0700) == 0);
    put_file(dir.file("sub/deep.4DKeyChain"), entry('f', "deep", false));
    put_file(dir.file("other.json"), entry('9', "other", false));

    Keychain kc;
    DirectorySource source({dir.path()});
    const ScanReport r = source.scan(kc);
    CHECK(r.keys_added == 4);
    CHECK(r.keys_seen == 4);
    CHECK(kc.size() == 4);
    for (const char* label : {"a", "b", "c", "e"}) CHECK(has_label(kc, label));
    CHECK_FALSE(has_label(kc, "deep"));   // subdirectories are never read
    CHECK_FALSE(has_label(kc, "other"));  // nor other extensions

    REQUIRE(r.problems.size() == 4);
    const std::string d = dir.path();
    CHECK(any_contains(r.problems, "keychain file " + d + "/broken.4DKeyChain is not valid JSON"));
    CHECK(any_contains(r.problems,
                       "keychain file " + d +
                           "/partial.4DKeyChain entry 0: encodedKey is 63 hex digits, need 64"));
    CHECK(any_contains(r.problems, "keychain file " + d + "/link.4DKeyChain is a symbolic link"));
    CHECK(
        any_contains(r.problems, "keychain file " + d + "/pipe.4DKeyChain is not a regular file"));
    CHECK(none_shares(std::string(63, 'd'), r.problems));

    const auto info = kc.info(KeySelector{std::nullopt, "b"});
    REQUIRE(info);
    REQUIRE(info->sources.size() == 1);
    CHECK(info->sources[0] == "file:" + d + "/a.4DKeyChain#1");
    CHECK_FALSE(info->tethered);
}

TEST_CASE("scanning unchanged files again adds nothing", "[file][directory]") {
    TempDir dir;
    put_file(dir.file("k.4DKeyChain"), entry('a', "a", true));
    Keychain kc;
    DirectorySource source({dir.path() + "/"});
    CHECK(source.scan(kc).keys_added == 1);
    const ScanReport again = source.scan(kc);
    CHECK(again.keys_added == 0);
    CHECK(again.keys_seen == 1);
    CHECK(again.problems.empty());
    CHECK(kc.size() == 1);
    // A trailing slash in the configured path does not double the one in the origin.
    CHECK(kc.list(false).at(0).sources ==
          std::vector<std::string>{"file:" + dir.path() + "/k.4DKeyChain#0"});
}

TEST_CASE("a missing directory is a reported problem, not an exception", "[file][directory]") {
    TempDir dir;
    put_file(dir.file("k.4DKeyChain"), entry('a', "a", false));
    REQUIRE(symlink(dir.path().c_str(), dir.file("linked").c_str()) == 0);
    Keychain kc;
    DirectorySource source(
        {dir.file("missing"), dir.file("k.4DKeyChain"), dir.file("linked"), dir.path()});
    const ScanReport r = source.scan(kc);
    CHECK(r.keys_added == 1);
    REQUIRE(r.problems.size() == 3);
    CHECK(r.problems[0] == "key directory " + dir.file("missing") + " does not exist");
    CHECK(r.problems[1] == "key directory " + dir.file("k.4DKeyChain") + " is not a directory");
    CHECK(r.problems[2] == "key directory " + dir.file("linked") +
                               " is a symbolic link; configure the directory it points to");
}

TEST_CASE("a deleted file takes its tethered keys with it on the next scan, untethered keys stay",
          "[file][directory]") {
    TempDir dir;
    put_file(dir.file("t.4DKeyChain"), entry('a', "tethered", true));
    put_file(dir.file("u.4DKeyChain"), entry('b', "untethered", false));
    put_file(dir.file("stays.4DKeyChain"), entry('c', "stays", true));
    Keychain kc;
    DirectorySource source({dir.path()});
    REQUIRE(source.scan(kc).keys_added == 3);

    REQUIRE(unlink(dir.file("t.4DKeyChain").c_str()) == 0);
    REQUIRE(unlink(dir.file("u.4DKeyChain").c_str()) == 0);
    const ScanReport r = source.scan(kc);
    CHECK(r.keys_added == 0);
    CHECK(r.problems.empty());
    CHECK_FALSE(has_label(kc, "tethered"));
    CHECK(has_label(kc, "untethered"));
    CHECK(has_label(kc, "stays"));
    CHECK(kc.size() == 2);

    // The file comes back: so does the key.
    put_file(dir.file("t.4DKeyChain"), entry('a', "tethered", true));
    CHECK(source.scan(kc).keys_added == 1);
    CHECK(has_label(kc, "tethered"));
}

TEST_CASE("a file that turns bad lets go of its tethered keys", "[file][directory]") {
    TempDir dir;
    put_file(dir.file("t.4DKeyChain"),
             "[" + entry('a', "first", true) + "," + entry('b', "second", true) + "]");
    Keychain kc;
    DirectorySource source({dir.path()});
    REQUIRE(source.scan(kc).keys_added == 2);
    // Entry 1 goes bad; then the whole file does.
    put_file(dir.file("t.4DKeyChain"), "[" + entry('a', "first", true) + ", {\"encodedKey\": 1}]");
    CHECK(source.scan(kc).problems.size() == 1);
    CHECK(has_label(kc, "first"));
    CHECK_FALSE(has_label(kc, "second"));
    put_file(dir.file("t.4DKeyChain"), "[");
    CHECK(source.scan(kc).problems.size() == 1);
    CHECK(kc.size() == 0);
}

TEST_CASE("an entry rewritten with another key detaches the old tethered key",
          "[file][directory]") {
    TempDir dir;
    put_file(dir.file("t.4DKeyChain"), entry('a', "old", true));
    Keychain kc;
    DirectorySource source({dir.path()});
    REQUIRE(source.scan(kc).keys_added == 1);
    put_file(dir.file("t.4DKeyChain"), entry('b', "new", true));
    CHECK(source.scan(kc).keys_added == 1);
    CHECK_FALSE(has_label(kc, "old"));
    CHECK(has_label(kc, "new"));
    CHECK(kc.size() == 1);
}

TEST_CASE("a renamed file keeps its tethered key without a drop", "[file][directory]") {
    TempDir dir;
    put_file(dir.file("before.4DKeyChain"), entry('a', "k", true));
    Keychain kc;
    std::vector<KeyEvent> events;
    kc.set_listener([&](const KeyEvent& e) { events.push_back(e); });
    DirectorySource source({dir.path()});
    REQUIRE(source.scan(kc).keys_added == 1);
    REQUIRE(rename(dir.file("before.4DKeyChain").c_str(), dir.file("after.4DKeyChain").c_str()) ==
            0);
    CHECK(source.scan(kc).keys_added == 0);
    REQUIRE(events.size() == 1);  // the first Added, and nothing since
    const auto info = kc.info(KeySelector{std::nullopt, "k"});
    REQUIRE(info);
    CHECK(info->sources == std::vector<std::string>{"file:" + dir.path() + "/after.4DKeyChain#0"});
}

TEST_CASE("a new DirectorySource, as after a reload, still detaches what the old one added",
          "[file][directory]") {
    TempDir dir;
    TempDir elsewhere;
    put_file(dir.file("t.4DKeyChain"), entry('a', "mine", true));
    put_file(elsewhere.file("o.4DKeyChain"), entry('b', "not mine", true));
    Keychain kc;
    DirectorySource({dir.path()}).scan(kc);
    DirectorySource({elsewhere.path()}).scan(kc);
    REQUIRE(kc.size() == 2);
    REQUIRE(unlink(dir.file("t.4DKeyChain").c_str()) == 0);
    REQUIRE(unlink(elsewhere.file("o.4DKeyChain").c_str()) == 0);
    DirectorySource({dir.path()}).scan(kc);
    CHECK_FALSE(has_label(kc, "mine"));
    CHECK(has_label(kc, "not mine"));  // another directory's origins are not this source's
}

TEST_CASE("the same key in two files stays while either file holds it", "[file][directory]") {
    TempDir dir;
    put_file(dir.file("one.4DKeyChain"), entry('a', "shared", true));
    put_file(dir.file("two.4DKeyChain"), entry('a', "shared", true));
    Keychain kc;
    DirectorySource source({dir.path()});
    const ScanReport first = source.scan(kc);
    CHECK(first.keys_added == 1);
    CHECK(first.keys_seen == 2);
    REQUIRE(unlink(dir.file("one.4DKeyChain").c_str()) == 0);
    source.scan(kc);
    CHECK(has_label(kc, "shared"));
    REQUIRE(unlink(dir.file("two.4DKeyChain").c_str()) == 0);
    source.scan(kc);
    CHECK_FALSE(has_label(kc, "shared"));
}
