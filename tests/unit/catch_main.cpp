// The one Catch2 main for every test executable; a secret a daemon fixture finds in a daemon's
// log or audit file fails the running test.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "known_secrets.h"

namespace {
const bool kLeaksFailTests = [] {
    keychaind::test::set_secret_leak_reporter([](const std::string& finding) { FAIL_CHECK(finding); });
    return true;
}();
}  // namespace
