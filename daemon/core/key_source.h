// KeySource: anything that feeds keys into the keychain (directories, devices, tokens).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/keychain.h"

namespace keychaind {

struct ScanReport {
    size_t keys_added = 0;     // new keychain entries
    size_t keys_seen = 0;      // valid keys found, new or not
    std::vector<std::string> problems;  // one line each, already logged; never a secret
};

class KeySource {
public:
    virtual ~KeySource() = default;
    virtual std::string_view name() const = 0;
    // Looks for keys now and adds them. Called at start and on DISCOVER, off the event loop.
    virtual ScanReport scan(Keychain& keychain) = 0;
};

}  // namespace keychaind
