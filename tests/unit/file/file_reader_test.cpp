// Directory listing and bounded, no-follow reads.
#include "file/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "core/error.h"
#include "file/keychain_file.h"
#include "core/unique_fd.h"
#include "file_test_support.h"
#include "temp_dir.h"

using namespace keychaind;
using namespace keychaind::file;
using keychaind::test::put_file;
using keychaind::test::TempDir;

namespace {

UniqueFd open_dir(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(fd);
    return fd;
}

// The reason read_bounded_file gives for refusing `name`.
std::string refusal(const TempDir& dir, const std::string& name,
                    size_t max = kMaxKeychainFileSize) {
    const UniqueFd dfd = open_dir(dir.path());
    try {
        (void)read_bounded_file(dfd.get(), name, max);
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::BadRequest);
        return e.what();
    }
    FAIL(name << " was read");
    return {};
}

}  // namespace

TEST_CASE("only root-level names ending in .4DKeyChain in any case are listed, sorted",
          "[file][reader]") {
    TempDir dir;
    for (const char* name : {"b.4DKeyChain", "A.4dkeychain", "KEYS.4DKEYCHAIN", "notes.txt",
                             "x.4DKeyChain.bak", "4DKeyChain", "y.4DKeyChai"})
        put_file(dir.file(name), "{}");
    REQUIRE(mkdir(dir.file("sub").c_str(), 0700) == 0);
    put_file(dir.file("sub/inner.4DKeyChain"), "{}");
    REQUIRE(mkdir(dir.file("folder.4DKeyChain").c_str(), 0700) == 0);

    const UniqueFd dfd = open_dir(dir.path());
    const auto names = list_keychain_files(dfd.get());
    CHECK(names == std::vector<std::string>{"A.4dkeychain", "KEYS.4DKEYCHAIN", "b.4DKeyChain"});
    // Listing twice through the same descriptor gives the same answer.
    CHECK(list_keychain_files(dfd.get()) == names);
}

TEST_CASE("symlinks and FIFOs with the extension are listed so that their refusal is reported",
          "[file][reader]") {
    TempDir dir;
    put_file(dir.file("real.4DKeyChain"), "{}");
    REQUIRE(symlink("real.4DKeyChain", dir.file("link.4DKeyChain").c_str()) == 0);
    REQUIRE(mkfifo(dir.file("pipe.4DKeyChain").c_str(), 0600) == 0);
    const UniqueFd dfd = open_dir(dir.path());
    CHECK(list_keychain_files(dfd.get()) ==
          std::vector<std::string>{"link.4DKeyChain", "pipe.4DKeyChain", "real.4DKeyChain"});
}

TEST_CASE("a regular file is read whole into secret memory", "[file][reader]") {
    TempDir dir;
    const std::string content = "{\"passPhrase\": \"x\"}\n";
    put_file(dir.file("k.4DKeyChain"), content);
    put_file(dir.file("empty.4DKeyChain"), "");
    const UniqueFd dfd = open_dir(dir.path());
    CHECK(read_bounded_file(dfd.get(), "k.4DKeyChain", kMaxKeychainFileSize).view() == content);
    CHECK(read_bounded_file(dfd.get(), "empty.4DKeyChain", kMaxKeychainFileSize).empty());
}

TEST_CASE("a file over the limit is refused, one at the limit is read", "[file][reader]") {
    TempDir dir;
    put_file(dir.file("big.4DKeyChain"), std::string(kMaxKeychainFileSize + 1, ' '));
    put_file(dir.file("fits.4DKeyChain"), std::string(kMaxKeychainFileSize, ' '));
    CHECK(refusal(dir, "big.4DKeyChain") == "is 1048577 bytes, over the 1 MiB limit");
    const UniqueFd dfd = open_dir(dir.path());
    CHECK(read_bounded_file(dfd.get(), "fits.4DKeyChain", kMaxKeychainFileSize).size() ==
          kMaxKeychainFileSize);
    CHECK(refusal(dir, "fits.4DKeyChain", 64 * 1024) == "is 1048576 bytes, over the 64 KiB limit");
    CHECK(refusal(dir, "fits.4DKeyChain", 1000) == "is 1048576 bytes, over the 1000 bytes limit");
}

TEST_CASE("a symbolic link is refused, even to a good file", "[file][reader]") {
    TempDir dir;
    put_file(dir.file("real.4DKeyChain"), "{}");
    REQUIRE(symlink(dir.file("real.4DKeyChain").c_str(), dir.file("link.4DKeyChain").c_str()) == 0);
    REQUIRE(symlink("/nonexistent", dir.file("dangling.4DKeyChain").c_str()) == 0);
    CHECK(refusal(dir, "link.4DKeyChain") == "is a symbolic link");
    CHECK(refusal(dir, "dangling.4DKeyChain") == "is a symbolic link");
}

TEST_CASE("a FIFO is refused at once, without blocking", "[file][reader]") {
    TempDir dir;
    REQUIRE(mkfifo(dir.file("pipe.4DKeyChain").c_str(), 0600) == 0);
    const auto start = std::chrono::steady_clock::now();
    CHECK(refusal(dir, "pipe.4DKeyChain") == "is not a regular file");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("a directory, a device or a missing name is refused", "[file][reader]") {
    TempDir dir;
    REQUIRE(mkdir(dir.file("d.4DKeyChain").c_str(), 0700) == 0);
    CHECK(refusal(dir, "d.4DKeyChain") == "is not a regular file");
    CHECK(refusal(dir, "missing.4DKeyChain") == "does not exist");
    const UniqueFd dev = open_dir("/dev");
    try {
        (void)read_bounded_file(dev.get(), "null", kMaxKeychainFileSize);
        FAIL("/dev/null was read");
    } catch (const KeychainError& e) {
        CHECK(std::string(e.what()) == "is not a regular file");
    }
}

TEST_CASE("a name that is not a plain file name is refused", "[file][reader]") {
    TempDir dir;
    REQUIRE(mkdir(dir.file("sub").c_str(), 0700) == 0);
    put_file(dir.file("sub/k.4DKeyChain"), "{}");
    CHECK(refusal(dir, "sub/k.4DKeyChain") == "is not a plain file name");
    CHECK(refusal(dir, "") == "is not a plain file name");
    CHECK(refusal(dir, "..") == "is not a plain file name");
}

TEST_CASE("UniqueFd closes its descriptor once and moves ownership", "[file][reader]") {
    int raw = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(raw >= 0);
    {
        UniqueFd a(raw);
        UniqueFd b(std::move(a));
        CHECK_FALSE(a);
        CHECK(b.get() == raw);
        UniqueFd c;
        c = std::move(b);
        CHECK(c.get() == raw);
        CHECK(fcntl(raw, F_GETFD) != -1);
    }
    CHECK(fcntl(raw, F_GETFD) == -1);
}
