// PIN files: ownership, mode and size checks on the opened descriptor, content in SecretBytes.
#include "token/pin_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/log.h"
#include "core/unique_fd.h"
#include "token/pkcs11_error.h"

namespace keychaind::token {

SecretBytes read_pin_file(const std::string& path, uid_t trusted_uid) {
    const std::string shown = "PIN file " + log::escape(path, 1024);
    char ebuf[128];
    // O_NONBLOCK: a FIFO put in the file's place must not hang the open.
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        const int err = errno;
        if (err == ELOOP) throw TokenFault(shown + " is a symlink");
        throw TokenFault(shown + ": " + strerror_r(err, ebuf, sizeof ebuf));
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) throw TokenFault(shown + ": " + strerror_r(errno, ebuf, sizeof ebuf));
    if (!S_ISREG(st.st_mode)) throw TokenFault(shown + " is not a regular file");
    if (st.st_uid != 0 && st.st_uid != trusted_uid)
        throw TokenFault(shown + " is owned by uid " + std::to_string(st.st_uid) +
                         "; it must belong to root or to the daemon's user");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw TokenFault(shown + " is open to group or others (mode " + mode + "); chmod 600 it");
    }
    if (st.st_size > static_cast<off_t>(kMaxPinFileSize))
        throw TokenFault(shown + " is over " + std::to_string(kMaxPinFileSize) + " bytes");
    SecretBytes buf(kMaxPinFileSize + 1);
    size_t got = 0;
    for (;;) {
        const ssize_t n = read(fd.get(), buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw TokenFault(shown + ": " + strerror_r(errno, ebuf, sizeof ebuf));
        if (n == 0) break;
        got += static_cast<size_t>(n);
        if (got > kMaxPinFileSize) throw TokenFault(shown + " is over " + std::to_string(kMaxPinFileSize) + " bytes");
    }
    if (got > 0 && buf.data()[got - 1] == '\n') {
        --got;
        if (got > 0 && buf.data()[got - 1] == '\r') --got;
    }
    buf.truncate(got);
    if (buf.empty()) throw TokenFault(shown + " is empty");
    if (std::memchr(buf.data(), 0, buf.size()) != nullptr) throw TokenFault(shown + " holds a NUL byte");
    return buf;
}

}  // namespace keychaind::token
