// CapturedStderr: what the daemon's log (stderr) says while one test runs.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace keychaind::test {

class CapturedStderr {
public:
    CapturedStderr() {
        std::fflush(stderr);
        char name[] = "/tmp/keychaind-stderr-XXXXXX";
        file_ = ::mkstemp(name);
        if (file_ < 0) throw std::runtime_error("mkstemp failed");
        ::unlink(name);
        saved_ = ::dup(STDERR_FILENO);
        ::dup2(file_, STDERR_FILENO);
    }
    ~CapturedStderr() {
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(file_);
    }
    CapturedStderr(const CapturedStderr&) = delete;
    CapturedStderr& operator=(const CapturedStderr&) = delete;

    std::string text() const {
        std::string out;
        char buf[4096];
        for (off_t at = 0;;) {
            const ssize_t n = ::pread(file_, buf, sizeof buf, at);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
            at += n;
        }
        return out;
    }
    // How many lines hold `needle`.
    size_t lines_with(const std::string& needle) const {
        const std::string t = text();
        size_t count = 0, pos = 0;
        while (pos < t.size()) {
            size_t end = t.find('\n', pos);
            if (end == std::string::npos) end = t.size();
            if (t.substr(pos, end - pos).find(needle) != std::string::npos) ++count;
            pos = end + 1;
        }
        return count;
    }

private:
    int file_ = -1;
    int saved_ = -1;
};

}  // namespace keychaind::test
