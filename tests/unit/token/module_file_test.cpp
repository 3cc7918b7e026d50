// Module file checks (owner, mode, symlinks, every directory up to /) and p11-kit registry lookups.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "temp_dir.h"
#include "token/module_file.h"
#include "token/pkcs11_error.h"
#include "token_test_support.h"

using namespace keychaind::token;
using keychaind::test::TempDir;
using keychaind::token_test::make_dir;
using keychaind::token_test::put_file;
using keychaind::token_test::running_as_root;

namespace {

// The tests' files belong to whoever runs them: trust that uid as the daemon trusts root.
std::string check(const std::string& path) { return checked_module_path(path, geteuid()); }

}  // namespace

TEST_CASE("a module in safe directories is accepted at its real path", "[token][module_file]") {
    TempDir dir("keychaind-module");
    make_dir(dir.file("lib"), 0755);
    put_file(dir.file("lib/mod.so"), "ELF", 0755);
    REQUIRE(check(dir.file("lib/mod.so")) == dir.file("lib/mod.so"));
    // A symlinked directory on the way is resolved (as /lib -> /usr/lib); the file checked is the real one.
    REQUIRE(symlink(dir.file("lib").c_str(), dir.file("link").c_str()) == 0);
    REQUIRE(check(dir.file("link/mod.so")) == dir.file("lib/mod.so"));
}

TEST_CASE("a module others could replace or change is refused, naming the path and why", "[token][module_file]") {
    TempDir dir("keychaind-module");
    SECTION("group-writable directory") {
        make_dir(dir.file("lib"), 0775);
        put_file(dir.file("lib/mod.so"), "ELF", 0755);
        REQUIRE_THROWS_WITH(check(dir.file("lib/mod.so")),
                            Catch::Contains(dir.file("lib")) && Catch::Contains("writable by group or others") &&
                                Catch::Contains("0775"));
    }
    SECTION("world-writable directory without the sticky bit") {
        make_dir(dir.file("lib"), 0777);
        put_file(dir.file("lib/mod.so"), "ELF", 0755);
        REQUIRE_THROWS_AS(check(dir.file("lib/mod.so")), TokenFault);
    }
    SECTION("a sticky world-writable directory (like /tmp) is fine") {
        make_dir(dir.file("lib"), 01777);
        put_file(dir.file("lib/mod.so"), "ELF", 0755);
        REQUIRE(check(dir.file("lib/mod.so")) == dir.file("lib/mod.so"));
    }
    SECTION("group-writable file") {
        put_file(dir.file("mod.so"), "ELF", 0775);
        REQUIRE_THROWS_WITH(check(dir.file("mod.so")), Catch::Contains("mod.so is writable by group or others"));
    }
    SECTION("a symlink as the module itself") {
        put_file(dir.file("real.so"), "ELF", 0755);
        REQUIRE(symlink(dir.file("real.so").c_str(), dir.file("mod.so").c_str()) == 0);
        REQUIRE_THROWS_WITH(check(dir.file("mod.so")), Catch::Contains("is a symlink"));
    }
    SECTION("not a regular file") {
        make_dir(dir.file("mod.so"), 0755);
        REQUIRE_THROWS_WITH(check(dir.file("mod.so")), Catch::Contains("is not a regular file"));
        REQUIRE(mkfifo(dir.file("fifo.so").c_str(), 0644) == 0);
        REQUIRE_THROWS_WITH(check(dir.file("fifo.so")), Catch::Contains("is not a regular file"));
    }
    SECTION("missing, relative, or naming no file") {
        REQUIRE_THROWS_WITH(check(dir.file("none.so")), Catch::Contains("none.so"));
        REQUIRE_THROWS_WITH(check("lib/mod.so"), Catch::Contains("is not an absolute path"));
        REQUIRE_THROWS_AS(check(dir.file("")), TokenFault);
    }
    SECTION("owned by someone else") {
        if (!running_as_root()) return;  // chown needs root
        put_file(dir.file("mod.so"), "ELF", 0755);
        REQUIRE(chown(dir.file("mod.so").c_str(), 4242, 4242) == 0);
        REQUIRE_THROWS_WITH(check(dir.file("mod.so")), Catch::Contains("owned by uid 4242"));
        make_dir(dir.file("theirs"), 0755);
        put_file(dir.file("theirs/mod.so"), "ELF", 0755);
        REQUIRE(chown(dir.file("theirs").c_str(), 4242, 4242) == 0);
        REQUIRE_THROWS_WITH(check(dir.file("theirs/mod.so")),
                            Catch::Contains("directory " + dir.file("theirs") + " is owned by uid 4242"));
        // The daemon trusts root alone.
        REQUIRE_THROWS_AS(checked_module_path(dir.file("theirs/mod.so")), TokenFault);
    }
}

TEST_CASE("a p11-kit registry name resolves to its module line, and the system directory overrides",
          "[token][module_file]") {
    TempDir dir("keychaind-registry");
    make_dir(dir.file("package"), 0755);
    make_dir(dir.file("system"), 0755);
    const ModuleRegistryDirs dirs{{dir.file("package"), dir.file("system")}, "/usr/lib/pkcs11"};
    put_file(dir.file("package/softhsm2.module"),
             "# comment\nmodule: /usr/lib/softhsm/libsofthsm2.so\ncritical: no\n", 0644);
    put_file(dir.file("package/opensc.module"), "module: opensc-pkcs11.so\n", 0644);
    REQUIRE(registered_module_path("softhsm2", dirs) == "/usr/lib/softhsm/libsofthsm2.so");
    // Relative: p11-kit's module directory.
    REQUIRE(registered_module_path("opensc", dirs) == "/usr/lib/pkcs11/opensc-pkcs11.so");
    put_file(dir.file("system/opensc.module"), "module:   /opt/opensc/lib.so  \n", 0644);
    REQUIRE(registered_module_path("opensc", dirs) == "/opt/opensc/lib.so");
    REQUIRE_THROWS_WITH(registered_module_path("nope", dirs),
                        Catch::Contains("no p11-kit module is registered as \"nope\"") &&
                            Catch::Contains(dir.file("system/nope.module")));
    put_file(dir.file("package/bad.module"), "module: /x.so\n", 0666);
    REQUIRE_THROWS_WITH(registered_module_path("bad", dirs), Catch::Contains("writable by group or others"));
}

TEST_CASE("the installed SoftHSM2 registration passes the checks", "[token][module_file]") {
    if (access("/usr/share/p11-kit/modules/softhsm2.module", R_OK) != 0) return;
    const std::string path = registered_module_path("softhsm2");
    REQUIRE(path.find("libsofthsm2.so") != std::string::npos);
    REQUIRE_NOTHROW(checked_module_path(path));
}
