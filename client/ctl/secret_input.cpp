// Reading passphrases without leaving copies behind.
#include "secret_input.h"

#include <cstring>

#include "ctl.h"
#include "file_io.h"

namespace keychain::ctl {

int sources_given(const SecretSource& s) { return !s.file.empty() + s.stdin_ + !s.text.empty(); }

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
    if (raw.empty()) usage_error(std::string("the ") + what + " is empty");
    if (std::memchr(raw.data(), 0, raw.size()) != nullptr) usage_error(std::string("the ") + what + " holds a NUL byte");
    keychaind::SecretBytes out(raw.size() + 1);  // zero-filled: the last byte is the NUL
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
}

}  // namespace keychain::ctl
