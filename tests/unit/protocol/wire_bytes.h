// Helpers to write expected frames as readable hex in the protocol tests.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "core/secret_bytes.h"

namespace keychaind::wire::test {

// "00 00 00 06  01 01" -> bytes; spaces and newlines are ignored.
inline std::vector<uint8_t> hex_bytes(std::string_view text) {
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::vector<uint8_t> out;
    int high = -1;
    for (char c : text) {
        if (c == ' ' || c == '\n') continue;
        const int d = digit(c);
        if (d < 0) throw std::invalid_argument("bad hex in a test frame");
        if (high < 0) {
            high = d;
        } else {
            out.push_back(static_cast<uint8_t>(high << 4 | d));
            high = -1;
        }
    }
    if (high >= 0) throw std::invalid_argument("odd hex in a test frame");
    return out;
}

inline std::vector<uint8_t> plain(const WipingBuffer& b) { return {b.begin(), b.end()}; }

inline std::span<const uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace keychaind::wire::test
