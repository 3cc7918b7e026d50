// The parser of one .4DKeyChain file's content (docs/keychain-file.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/key.h"

namespace keychaind::file {

inline constexpr size_t kMaxKeychainFileSize = 1024 * 1024;
// Deeper JSON is refused before it is walked: no real keychain file nests past 3 levels.
inline constexpr size_t kMaxKeychainFileDepth = 64;
// A `name` longer than this is an entry error: labels travel in every LIST_KEYS reply.
inline constexpr size_t kMaxLabelBytes = 255;
// Problems past this many are counted in one last line, so a hostile file cannot flood the log.
inline constexpr size_t kMaxProblemsPerFile = 100;

struct ParsedEntry {
    size_t index;  // 0-based position in the file's array; 0 for a single-object file
    std::shared_ptr<const Key> key;
    bool tethered;
};

struct ParseResult {
    std::vector<ParsedEntry> entries;
    std::vector<std::string> problems;  // "<where> entry <index>: <reason>"; never a secret
};

// `where` names the file in messages (e.g. "/media/x/keys.4DKeyChain"; it is escaped here) and
// gives the default label (its base name without extension, plus "#<index>" in an array).
// Throws KeychainError(BadRequest) when the whole file is refused: over 1 MiB, invalid UTF-8,
// invalid JSON, nested deeper than kMaxKeychainFileDepth, or neither an object nor an array.
// A bad entry is a problem and is skipped; the others still load.
ParseResult parse_keychain_file(std::span<const uint8_t> content, std::string_view where);

// Strict RFC 3339 ("2027-01-01T00:00:00Z", "2027-01-01T02:00:00.5+02:00"). Throws
// KeychainError(BadRequest) naming what is wrong; times before 1970 come back as the epoch.
SystemTime parse_rfc3339(std::string_view text);

}  // namespace keychaind::file
