// Byte helpers for the core tests, written without the code under test.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../../fixtures/test_bytes.h"

namespace keychaind::core_test {

using test::unhex;  // tests/fixtures/test_bytes.h

// first, first+1, ... (n bytes, wrapping at 256)
inline std::vector<uint8_t> counting_bytes(uint8_t first, size_t n) {
    std::vector<uint8_t> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(first + i);
    return out;
}

inline std::span<const uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Reads through a volatile pointer so the compiler cannot assume freed memory's contents.
inline bool all_zero(const uint8_t* p, size_t n) {
    const volatile uint8_t* v = p;
    for (size_t i = 0; i < n; ++i)
        if (v[i] != 0) return false;
    return true;
}

// What a child forked now finds at p..p+n: 1 all zeros, 0 anything else, -1 the fork failed.
inline int forked_child_sees_all_zero(const uint8_t* p, size_t n) {
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(all_zero(p, n) ? 0 : 1);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status) == 0 ? 1 : 0;
}

// True when no `window`-character piece of `secret` appears in `text`.
inline bool shares_no_window(std::string_view secret, std::string_view text, size_t window = 6) {
    if (secret.size() < window) return text.find(secret) == std::string_view::npos;
    for (size_t i = 0; i + window <= secret.size(); ++i)
        if (text.find(secret.substr(i, window)) != std::string_view::npos) return false;
    return true;
}

}  // namespace keychaind::core_test
