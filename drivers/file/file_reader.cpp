// Directory listing and bounded, no-follow file reads for the file key sources.
#include "file/file_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/error.h"
#include "core/unique_fd.h"

namespace keychaind::file {
namespace {

constexpr std::string_view kExtension = ".4DKeyChain";

bool has_keychain_extension(std::string_view name) {
    if (name.size() < kExtension.size()) return false;
    const std::string_view tail = name.substr(name.size() - kExtension.size());
    return std::equal(tail.begin(), tail.end(), kExtension.begin(), [](char a, char b) {
        const auto lower = [](char c) {
            return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        };
        return lower(a) == lower(b);
    });
}

KeychainError refused(const std::string& reason) {
    return KeychainError(ErrorCode::BadRequest, reason);
}

// `what` followed by the text of errno, read before anything else can change it.
KeychainError refused_errno(const char* what) {
    const int err = errno;
    char buf[128];
    return refused(std::string(what) + ": " + strerror_r(err, buf, sizeof buf));
}

// The checks made before opening (on the name) and again after (on the descriptor).
void check_type_and_size(const struct stat& st, size_t max) {
    if (S_ISLNK(st.st_mode)) throw refused("is a symbolic link");
    if (!S_ISREG(st.st_mode)) throw refused("is not a regular file");
    if (static_cast<uint64_t>(st.st_size) > max)
        throw refused("is " + std::to_string(st.st_size) + " bytes, over the " +
                      size_limit_text(max) + " limit");
}

struct DirCloser {
    void operator()(DIR* d) const noexcept { closedir(d); }
};

}  // namespace

std::string size_limit_text(size_t max) {
    if (max >= 1024 * 1024 && max % (1024 * 1024) == 0) return std::to_string(max >> 20) + " MiB";
    if (max >= 1024 && max % 1024 == 0) return std::to_string(max >> 10) + " KiB";
    return std::to_string(max) + " bytes";
}

std::vector<std::string> list_keychain_files(int dirfd) {
    // fdopendir takes the descriptor it is given: hand it a duplicate, opened at offset 0.
    UniqueFd own(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!own) throw refused_errno("cannot be listed");
    std::unique_ptr<DIR, DirCloser> dir(fdopendir(own.get()));
    if (!dir) throw refused_errno("cannot be listed");
    own.release();

    std::vector<std::string> names;
    for (;;) {
        errno = 0;
        const dirent* e = readdir(dir.get());
        if (e == nullptr) {
            if (errno != 0) throw refused_errno("cannot be listed");
            break;
        }
        const std::string_view name = e->d_name;
        if (e->d_type == DT_DIR || name == "." || name == "..") continue;
        if (has_keychain_extension(name)) names.emplace_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

SecretBytes read_bounded_file(int dirfd, const std::string& name, size_t max) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        throw refused("is not a plain file name");

    // Looking first means a device or FIFO is never even opened (opening one can have effects).
    struct stat st {};
    if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) throw refused("does not exist");
        throw refused_errno("cannot be examined");
    }
    check_type_and_size(st, max);

    // O_NONBLOCK: should the name have become a FIFO since, open() returns at once.
    UniqueFd fd(
        openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        if (errno == ELOOP) throw refused("is a symbolic link");
        if (errno == ENOENT) throw refused("does not exist");
        throw refused_errno("cannot be opened");
    }
    if (fstat(fd.get(), &st) != 0) throw refused_errno("cannot be examined");
    check_type_and_size(st, max);

    // Room for one byte more than the size seen, so growth shows; never more than max + 1.
    SecretBytes buf(std::min(static_cast<size_t>(st.st_size), max) + 1);
    size_t got = 0;
    for (;;) {
        if (got == buf.size()) {
            if (got > max) break;
            SecretBytes bigger(std::min(buf.size() * 2, max + 1));
            std::memcpy(bigger.data(), buf.data(), got);
            buf = std::move(bigger);
        }
        const ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw refused_errno("cannot be read");
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    if (got > max)
        throw refused("grew past the " + size_limit_text(max) + " limit while being read");
    buf.truncate(got);
    return buf;
}

}  // namespace keychaind::file
