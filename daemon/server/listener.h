// The daemon's listening Unix socket: created from the config or handed over by systemd.
#pragma once

#include <sys/stat.h>

#include <string>

#include "config/config.h"
#include "core/unique_fd.h"

namespace keychaind {

class Listener {
public:
    // Throws std::runtime_error naming the path and the reason.
    explicit Listener(const Config& cfg);
    ~Listener();  // removes the socket file it created (only if it is still ours)
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    int fd() const { return fd_.get(); }
    bool socket_activated() const { return activated_; }
    const std::string& path() const { return path_; }

private:
    UniqueFd fd_;
    std::string path_;
    bool activated_ = false;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

}  // namespace keychaind
