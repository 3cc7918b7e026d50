// Helpers for the token driver tests: files with chosen modes and owners, raw key parts.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace keychaind::token_test {

inline void put_file(const std::string& path, std::string_view content, mode_t mode) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    f.close();
    if (!f || chmod(path.c_str(), mode) != 0) throw std::runtime_error("cannot write " + path);
}

inline void make_dir(const std::string& path, mode_t mode) {
    if (mkdir(path.c_str(), 0700) != 0 || chmod(path.c_str(), mode) != 0)
        throw std::runtime_error("cannot make directory " + path);
}

// Tests that hand a file to another owner need root.
inline bool running_as_root() { return geteuid() == 0; }

}  // namespace keychaind::token_test
