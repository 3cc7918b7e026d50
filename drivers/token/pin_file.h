// read_pin_file: a token's PIN from a root-only file, straight into locked memory.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/secret_bytes.h"

namespace keychaind::token {

inline constexpr size_t kMaxPinFileSize = 1024;

// The PIN in `path`, without one trailing newline ("\n" or "\r\n"). The file must be a regular
// file, not a symlink, owned by root or `trusted_uid` (the daemon's own uid), with no permission
// bits for group or others, at most kMaxPinFileSize bytes, not empty and without a NUL byte.
// Throws TokenFault naming the path and the reason, never the content.
SecretBytes read_pin_file(const std::string& path, uid_t trusted_uid);

}  // namespace keychaind::token
