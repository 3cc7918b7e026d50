// keychainctl's local files: bounded reads, secret reads into locked memory, careful writes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/secret_bytes.h"

namespace keychain::ctl {

// Inputs go to the daemon in one frame: nothing larger is useful.
inline constexpr size_t kMaxInputBytes = 1024 * 1024;
inline constexpr size_t kMaxSecretBytes = 64 * 1024;

// "-" reads standard input. Throws CtlError(kExitLocalIo) naming the file.
std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes = kMaxInputBytes);
keychaind::SecretBytes read_secret_file(const std::string& path, size_t max_bytes = kMaxSecretBytes);
// Removes one trailing "\n" or "\r\n" (a passphrase typed or echoed into a file).
void strip_newline(keychaind::SecretBytes& s);

// Public outputs (signatures, PEM): created or truncated, mode 0644 before umask.
void write_file(const std::string& path, std::span<const uint8_t> bytes);
// Secret or irreplaceable outputs (data keys, wrapped keys, key files): created new with mode
// 0600 (an existing file is never overwritten), fsync'd with their directory.
void write_new_file(const std::string& path, std::span<const uint8_t> bytes);

// The digest of a file's contents with SHA-256/384/512 (digest_size 32/48/64), streamed.
std::vector<uint8_t> hash_file(const std::string& path, size_t digest_size);

}  // namespace keychain::ctl

namespace keychain::ctl {
// A secret result: "-" prints it base64 on standard output (only when the user asked with
// "-"), anything else is a new 0600 file.
void emit_secret(const std::string& path, std::span<const uint8_t> bytes);
}  // namespace keychain::ctl
