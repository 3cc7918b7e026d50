// DirectorySource: keys from the .4DKeyChain files at the root of configured directories.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/key_source.h"

namespace keychaind::file {

class DirectorySource final : public KeySource {
public:
    explicit DirectorySource(std::vector<std::string> directories);

    std::string_view name() const override { return "directories"; }
    // Reads every keychain file again and adds its keys with the origin
    // ("file", "<directory>/<file>#<index>"). Origins in these directories that the files no
    // longer hold (file deleted, entry removed or now another key) are detached, so tethered keys
    // go with their file. Problems are logged and reported, never thrown. Keeps no state between
    // scans (the keychain's origins are the record), so a fresh instance after a reload carries on.
    ScanReport scan(Keychain& keychain) override;

private:
    std::vector<std::string> directories_;
};

}  // namespace keychaind::file
