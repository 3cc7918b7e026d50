// Reading passphrases without leaving copies behind.
#include "secret_input.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ctl.h"
#include "file_io.h"

namespace keychain::ctl {

int sources_given(const SecretSource& s) { return !s.file.empty() + s.stdin_ + !s.text.empty(); }

namespace {

// Echo off on a terminal for as long as this lives.
class EchoOff {
public:
    explicit EchoOff(int fd) : fd_(fd) {
        if (tcgetattr(fd_, &saved_) != 0) return;
        termios quiet = saved_;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        quiet.c_lflag |= ECHONL;
        active_ = tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
    }
    ~EchoOff() {
        if (active_) tcsetattr(fd_, TCSAFLUSH, &saved_);
    }
    EchoOff(const EchoOff&) = delete;
    EchoOff& operator=(const EchoOff&) = delete;

private:
    int fd_;
    termios saved_{};
    bool active_ = false;
};

keychaind::SecretBytes checked_text(keychaind::SecretBytes raw, const char* what) {
    if (raw.empty()) usage_error(std::string("the ") + what + " is empty");
    if (std::memchr(raw.data(), 0, raw.size()) != nullptr) usage_error(std::string("the ") + what + " holds a NUL byte");
    keychaind::SecretBytes out(raw.size() + 1);  // zero-filled: the last byte is the NUL
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
}

}  // namespace

keychaind::SecretBytes read_secret_interactive(const std::string& prompt, const char* what) {
    if (!isatty(STDIN_FILENO)) {
        keychaind::SecretBytes raw = read_secret_file("-");
        strip_newline(raw);
        return checked_text(std::move(raw), what);
    }
    const ssize_t w = ::write(STDERR_FILENO, prompt.data(), prompt.size());
    (void)w;
    EchoOff quiet(STDIN_FILENO);
    keychaind::SecretBytes line(kMaxSecretBytes);
    size_t n = 0;
    for (;;) {
        char ch = 0;
        const ssize_t r = ::read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || ch == '\n') break;
        if (n == line.size()) usage_error(std::string("the ") + what + " is too long");
        line.data()[n++] = static_cast<uint8_t>(ch);
    }
    if (n > 0 && line.data()[n - 1] == '\r') --n;  // a serial console's line end
    line.truncate(n);
    return checked_text(std::move(line), what);
}

keychaind::SecretBytes read_secret_text(SecretSource& s, const char* what) {
    keychaind::SecretBytes raw;
    if (!s.text.empty()) {
        raw = keychaind::SecretBytes(s.text.data(), s.text.size());
        keychaind::secure_wipe(s.text.data(), s.text.size());
        s.text.clear();
    } else {
        raw = read_secret_file(s.stdin_ ? "-" : s.file);
        strip_newline(raw);
    }
    return checked_text(std::move(raw), what);
}

}  // namespace keychain::ctl
