// The crypto backends under test: a test that takes one runs once for each compiled-in backend.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "core/crypto_backend.h"
#include "core/error.h"

namespace keychaind::core_test {

inline const CryptoBackend& backend_named(const std::string& name) {
    const CryptoBackend* backend = crypto_backend_named(name);
    REQUIRE(backend != nullptr);
    return *backend;
}

// The code parse_private_key throws for the input; Ok when it parses.
inline ErrorCode parse_error(const CryptoBackend& backend, std::span<const uint8_t> input) {
    try {
        (void)backend.parse_private_key(input);
    } catch (const KeychainError& e) {
        return e.code();
    }
    return ErrorCode::Ok;
}

}  // namespace keychaind::core_test

// Runs the rest of the enclosing test once per backend (a Catch2 generator); every failure names
// the backend it came from.
#define FOR_EACH_BACKEND(var)                                                            \
    const std::string var##_name = GENERATE(as<std::string>{}, "mbedtls", "openssl");   \
    INFO("backend " << var##_name);                                                      \
    const ::keychaind::CryptoBackend& var = ::keychaind::core_test::backend_named(var##_name)
