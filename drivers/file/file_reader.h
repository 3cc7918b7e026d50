// Reading keychain and PEM files without following links, blocking on FIFOs or reading unbounded.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/secret_bytes.h"

namespace keychaind::file {

// Names in the directory (root level only; never recurses) ending in ".4DKeyChain", compared
// without case, sorted. Every such entry is listed whatever its type, so that a symlink or a
// FIFO is refused by read_bounded_file with a reason rather than skipped in silence. Throws
// KeychainError(BadRequest) when the directory cannot be read.
std::vector<std::string> list_keychain_files(int dirfd);

// Reads `name` (a plain name in `dirfd`, no '/') into locked memory. Never opens a symlink, a
// device, a FIFO or a socket; never reads more than max+1 bytes even if the file grows. Throws
// KeychainError(BadRequest) whose message is the reason, to be put after the file's name:
// "is a symbolic link", "is not a regular file", "is N bytes, over the 1 MiB limit",
// "does not exist", "cannot be opened: <errno text>", "cannot be read: <errno text>".
SecretBytes read_bounded_file(int dirfd, const std::string& name, size_t max);

// "1 MiB", "64 KiB" or "100 bytes": a limit as the messages above give it.
std::string size_limit_text(size_t max);

}  // namespace keychaind::file
