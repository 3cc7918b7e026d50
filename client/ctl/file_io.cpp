// Reading and writing keychainctl's files.
#include "file_io.h"

#include <fcntl.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <utility>

#include "ctl.h"

namespace keychain::ctl {

namespace {

std::string display(const std::string& path) { return path == "-" ? "standard input" : path; }

[[noreturn]] void io_error(const std::string& what, const std::string& path, int err) {
    throw CtlError(kExitLocalIo, "cannot " + what + " " + display(path) + ": " + std::strerror(err));
}

class Fd {
public:
    explicit Fd(int fd, bool owned = true) : fd_(fd), owned_(owned) {}
    ~Fd() {
        if (owned_ && fd_ >= 0) ::close(fd_);
    }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)), owned_(o.owned_) {}
    Fd& operator=(Fd&&) = delete;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    // close(2) with its error: a failed close can mean lost data.
    int close_checked() {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
    bool owned_;
};

Fd open_input(const std::string& path) {
    if (path == "-") return Fd(STDIN_FILENO, false);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) io_error("open", path, errno);
    return fd;
}

// Reads up to max+1 bytes into out (sized max+1); returns the count.
size_t read_into(int fd, const std::string& path, uint8_t* out, size_t capacity) {
    size_t n = 0;
    while (n < capacity) {
        const ssize_t r = ::read(fd, out + n, capacity - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) io_error("read", path, errno);
        if (r == 0) break;
        n += static_cast<size_t>(r);
    }
    return n;
}

void write_all(int fd, const std::string& path, std::span<const uint8_t> bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) io_error("write", path, errno);
        off += static_cast<size_t>(w);
    }
}

std::string parent_dir(const std::string& path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes) {
    Fd fd = open_input(path);
    std::vector<uint8_t> out(max_bytes + 1);
    const size_t n = read_into(fd.get(), path, out.data(), out.size());
    if (n > max_bytes)
        throw CtlError(kExitLocalIo, display(path) + " is larger than " + std::to_string(max_bytes) + " bytes");
    out.resize(n);
    return out;
}

keychaind::SecretBytes read_secret_file(const std::string& path, size_t max_bytes) {
    Fd fd = open_input(path);
    keychaind::SecretBytes out(max_bytes + 1);
    const size_t n = read_into(fd.get(), path, out.data(), out.size());
    if (n > max_bytes)
        throw CtlError(kExitLocalIo, display(path) + " is larger than " + std::to_string(max_bytes) + " bytes");
    out.truncate(n);
    return out;
}

void strip_newline(keychaind::SecretBytes& s) {
    size_t n = s.size();
    if (n > 0 && s.data()[n - 1] == '\n') --n;
    if (n > 0 && n < s.size() && s.data()[n - 1] == '\r') --n;
    s.truncate(n);
}

void write_file(const std::string& path, std::span<const uint8_t> bytes) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (fd.get() < 0) io_error("create", path, errno);
    write_all(fd.get(), path, bytes);
    if (fd.close_checked() != 0) io_error("write", path, errno);
}

void write_new_file(const std::string& path, std::span<const uint8_t> bytes) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
        if (errno == EEXIST) throw CtlError(kExitLocalIo, path + " already exists; refusing to overwrite it");
        io_error("create", path, errno);
    }
    write_all(fd.get(), path, bytes);
    if (::fsync(fd.get()) != 0) io_error("fsync", path, errno);
    if (fd.close_checked() != 0) io_error("write", path, errno);
    // The new directory entry must survive a crash too.
    const std::string dir = parent_dir(path);
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) io_error("fsync directory", dir, errno);
}

std::vector<uint8_t> hash_file(const std::string& path, size_t digest_size) {
    const mbedtls_md_type_t type = digest_size == 32   ? MBEDTLS_MD_SHA256
                                   : digest_size == 48 ? MBEDTLS_MD_SHA384
                                                       : MBEDTLS_MD_SHA512;
    const mbedtls_md_info_t* info = mbedtls_md_info_from_type(type);
    std::unique_ptr<mbedtls_md_context_t, void (*)(mbedtls_md_context_t*)> ctx(new mbedtls_md_context_t,
                                                                               [](mbedtls_md_context_t* c) {
                                                                                   mbedtls_md_free(c);
                                                                                   delete c;
                                                                               });
    mbedtls_md_init(ctx.get());
    if (info == nullptr || mbedtls_md_setup(ctx.get(), info, 0) != 0 || mbedtls_md_starts(ctx.get()) != 0)
        throw CtlError(kExitLocalIo, "cannot set up the hash");
    Fd fd = open_input(path);
    std::vector<uint8_t> buf(64 * 1024);
    for (;;) {
        const ssize_t r = ::read(fd.get(), buf.data(), buf.size());
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) io_error("read", path, errno);
        if (r == 0) break;
        mbedtls_md_update(ctx.get(), buf.data(), static_cast<size_t>(r));
    }
    std::vector<uint8_t> digest(mbedtls_md_get_size(info));
    mbedtls_md_finish(ctx.get(), digest.data());
    return digest;
}

}  // namespace keychain::ctl

namespace keychain::ctl {

void emit_secret(const std::string& path, std::span<const uint8_t> bytes) {
    if (path != "-") {
        write_new_file(path, bytes);
        return;
    }
    // Encoded straight into locked memory and written past std::cout's buffer.
    keychaind::SecretBytes text((bytes.size() + 2) / 3 * 4 + 2);
    size_t olen = 0;
    if (mbedtls_base64_encode(text.data(), text.size(), &olen, bytes.data(), bytes.size()) != 0)
        throw CtlError(kExitLocalIo, "base64 encoding failed");
    text.data()[olen++] = '\n';
    std::cout.flush();
    write_all(STDOUT_FILENO, "-", {text.data(), olen});
}

}  // namespace keychain::ctl
