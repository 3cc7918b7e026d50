// PIN files: the checks that keep another user from planting or reading a PIN, and the content rules.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "temp_dir.h"
#include "token/pin_file.h"
#include "token/pkcs11_error.h"
#include "token_test_support.h"

using namespace keychaind;
using namespace keychaind::token;
using keychaind::test::TempDir;
using keychaind::token_test::put_file;
using keychaind::token_test::running_as_root;

namespace {
std::string pin_of(const std::string& path) {
    const SecretBytes pin = read_pin_file(path, geteuid());
    return std::string(pin.view());
}
}  // namespace

TEST_CASE("a PIN file gives its content without one trailing newline", "[token][pin_file]") {
    TempDir dir("keychaind-pin");
    put_file(dir.file("a"), "1234\n", 0600);
    REQUIRE(pin_of(dir.file("a")) == "1234");
    put_file(dir.file("b"), "12 34\r\n", 0400);
    REQUIRE(pin_of(dir.file("b")) == "12 34");
    put_file(dir.file("c"), "1234", 0600);
    REQUIRE(pin_of(dir.file("c")) == "1234");
    put_file(dir.file("d"), "1234\n\n", 0600);  // only one newline is taken off
    REQUIRE(pin_of(dir.file("d")) == "1234\n");
}

TEST_CASE("a PIN file others can read or write, or that is not a plain file, is refused", "[token][pin_file]") {
    TempDir dir("keychaind-pin");
    SECTION("group-readable") {
        put_file(dir.file("pin"), "1234\n", 0640);
        REQUIRE_THROWS_WITH(read_pin_file(dir.file("pin"), geteuid()),
                            Catch::Contains(dir.file("pin")) && Catch::Contains("group or others") &&
                                Catch::Contains("0640"));
    }
    SECTION("other-writable") {
        put_file(dir.file("pin"), "1234\n", 0602);
        REQUIRE_THROWS_AS(read_pin_file(dir.file("pin"), geteuid()), TokenFault);
    }
    SECTION("a symlink") {
        put_file(dir.file("real"), "1234\n", 0600);
        REQUIRE(symlink(dir.file("real").c_str(), dir.file("pin").c_str()) == 0);
        REQUIRE_THROWS_WITH(read_pin_file(dir.file("pin"), geteuid()), Catch::Contains("is a symlink"));
    }
    SECTION("a FIFO (never blocks) or a directory") {
        REQUIRE(mkfifo(dir.file("fifo").c_str(), 0600) == 0);
        REQUIRE_THROWS_WITH(read_pin_file(dir.file("fifo"), geteuid()), Catch::Contains("is not a regular file"));
        REQUIRE(mkdir(dir.file("sub").c_str(), 0700) == 0);
        REQUIRE_THROWS_AS(read_pin_file(dir.file("sub"), geteuid()), TokenFault);
    }
    SECTION("missing") {
        REQUIRE_THROWS_WITH(read_pin_file(dir.file("none"), geteuid()), Catch::Contains(dir.file("none")));
    }
    SECTION("owned by another user") {
        if (!running_as_root()) return;
        put_file(dir.file("pin"), "1234\n", 0600);
        REQUIRE(chown(dir.file("pin").c_str(), 4242, 4242) == 0);
        REQUIRE_THROWS_WITH(read_pin_file(dir.file("pin"), geteuid()), Catch::Contains("owned by uid 4242"));
    }
}

TEST_CASE("an empty, oversized or NUL-holding PIN file is refused without showing its content",
          "[token][pin_file]") {
    TempDir dir("keychaind-pin");
    put_file(dir.file("empty"), "\n", 0600);
    REQUIRE_THROWS_WITH(read_pin_file(dir.file("empty"), geteuid()), Catch::Contains("is empty"));
    put_file(dir.file("big"), std::string(kMaxPinFileSize + 1, '7'), 0600);
    REQUIRE_THROWS_WITH(read_pin_file(dir.file("big"), geteuid()), Catch::Contains("is over"));
    put_file(dir.file("nul"), std::string("secret\0pin", 10), 0600);
    try {
        read_pin_file(dir.file("nul"), geteuid());
        FAIL("a PIN with a NUL was accepted");
    } catch (const TokenFault& e) {
        REQUIRE(std::string(e.what()).find("NUL") != std::string::npos);
        REQUIRE(std::string(e.what()).find("secret") == std::string::npos);
    }
}
