// Helpers for the file driver tests: writing files and reading problems.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keychaind::test {

inline void put_file(const std::string& path, std::string_view content) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!f) throw std::runtime_error("cannot write " + path);
    f.close();
    chmod(path.c_str(), 0600);
}

inline std::span<const uint8_t> as_span(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// True when no `window`-character piece of `secret` appears in any of `lines`.
inline bool none_shares(std::string_view secret, const std::vector<std::string>& lines,
                        size_t window = 6) {
    for (const std::string& line : lines) {
        if (secret.size() < window) {
            if (line.find(secret) != std::string::npos) return false;
            continue;
        }
        for (size_t i = 0; i + window <= secret.size(); ++i)
            if (line.find(secret.substr(i, window)) != std::string::npos) return false;
    }
    return true;
}

}  // namespace keychaind::test
