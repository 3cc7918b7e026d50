// IdentitySource: TLS identities from PEM key and certificate files named in the config.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/key_source.h"

namespace keychaind::file {

// { name, key_path, certificate_path (empty: none) }. Defined with the daemon's config, which
// fills it; one type, so the config's list is handed over as it is.
using IdentityConfig = keychaind::IdentityConfig;

class IdentitySource final : public KeySource {
public:
    explicit IdentitySource(std::vector<IdentityConfig> identities);

    std::string_view name() const override { return "identities"; }
    // Reads each key (and certificate chain) file, at most 1 MiB, never through a symlink in the
    // last component, and adds the identity with label = name and origin ("identity", name).
    // Problems are logged and reported, never thrown.
    ScanReport scan(Keychain& keychain) override;

private:
    std::vector<IdentityConfig> identities_;
};

}  // namespace keychaind::file
