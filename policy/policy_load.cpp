// Reading the policy file safely: no symlink, a regular file, not too large, written only by root
// or the daemon's user.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "daemon/core/unique_fd.h"
#include "policy/policy.h"

namespace keychaind::policy {
namespace {

[[noreturn]] void fail_errno(const std::string& path, const char* what, int err) {
    char ebuf[128];
    throw PolicyError("policy file " + path + ": " + what + ": " +
                      strerror_r(err, ebuf, sizeof ebuf));
}

}  // namespace

std::shared_ptr<const Policy> Policy::load(const std::string& path) {
    // O_NONBLOCK: a FIFO put in the file's place must not hang the open.
    const UniqueFd fd(
        open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        const int err = errno;
        if (err == ELOOP)
            throw PolicyError("policy file " + path + " is a symbolic link; name the file itself");
        fail_errno(path, "cannot open", err);
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) fail_errno(path, "cannot stat", errno);
    if (!S_ISREG(st.st_mode)) throw PolicyError("policy file " + path + " is not a regular file");
    if (st.st_uid != 0 && st.st_uid != geteuid())
        throw PolicyError("policy file " + path + " is owned by uid " + std::to_string(st.st_uid) +
                          "; it must belong to root or to the daemon's user");
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw PolicyError("policy file " + path + " is writable by group or others (mode " + mode +
                          "); chmod go-w it");
    }
    const std::string too_large =
        "policy file " + path + " is larger than " + std::to_string(kMaxPolicyFileBytes) + " bytes";
    if (st.st_size > static_cast<off_t>(kMaxPolicyFileBytes)) throw PolicyError(too_large);
    std::string text(kMaxPolicyFileBytes + 1, '\0');
    size_t got = 0;
    for (;;) {
        const ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(path, "cannot read", errno);
        if (n == 0) break;
        got += static_cast<size_t>(n);
        if (got > kMaxPolicyFileBytes) throw PolicyError(too_large);  // it grew since fstat
    }
    text.resize(got);
    return parse(text, path);
}

}  // namespace keychaind::policy
