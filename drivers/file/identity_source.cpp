// IdentitySource: read PEM key/certificate pairs and add them as TLS identities.
#include "file/identity_source.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "file/file_reader.h"
#include "core/unique_fd.h"

namespace keychaind::file {
namespace {

constexpr size_t kMaxPemFileSize = 1024 * 1024;

// The file itself is opened relative to its directory, so a symlink in its place is refused
// while symlinks higher up (/etc/ssl -> ...) still work. Throws KeychainError naming the path.
SecretBytes read_pem_file(const std::string& path) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : path.substr(0, slash);
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    const std::string shown = log::escape(path, 1024);
    UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd) {
        const int err = errno;
        char buf[128];
        throw KeychainError(ErrorCode::BadRequest, shown + ": its directory cannot be opened: " +
                                                       strerror_r(err, buf, sizeof buf));
    }
    try {
        return read_bounded_file(dfd.get(), base, kMaxPemFileSize);
    } catch (const KeychainError& e) {
        throw KeychainError(e.code(), shown + " " + e.what());
    }
}

std::shared_ptr<const Key> load_identity(const IdentityConfig& ic) {
    const SecretBytes key_pem = read_pem_file(ic.key_path);
    std::unique_ptr<PrivateKey> key;
    try {
        key = crypto_backend().parse_private_key(key_pem.span());
    } catch (const KeychainError& e) {
        throw KeychainError(e.code(), log::escape(ic.key_path, 1024) + ": " + e.what());
    }
    std::vector<std::vector<uint8_t>> chain;
    if (!ic.certificate_path.empty()) {
        const SecretBytes cert_pem = read_pem_file(ic.certificate_path);
        try {
            chain = crypto_backend().parse_certificates(cert_pem.span());
        } catch (const KeychainError& e) {
            throw KeychainError(e.code(), log::escape(ic.certificate_path, 1024) + ": " + e.what());
        }
    }
    try {
        return Key::identity(std::move(key), std::move(chain), ic.name);
    } catch (const KeychainError& e) {
        throw KeychainError(e.code(), log::escape(ic.certificate_path, 1024) + ": " + e.what());
    }
}

}  // namespace

IdentitySource::IdentitySource(std::vector<IdentityConfig> identities)
    : identities_(std::move(identities)) {}

ScanReport IdentitySource::scan(Keychain& keychain) {
    ScanReport report;
    for (const IdentityConfig& ic : identities_) {
        const std::string who = "identity \"" + log::escape(ic.name) + "\"";
        std::shared_ptr<const Key> key;
        try {
            key = load_identity(ic);
        } catch (const KeychainError& e) {
            std::string line = who + ": " + e.what();
            log::warning(line);
            report.problems.push_back(std::move(line));
            continue;
        }
        ++report.keys_seen;
        if (keychain.add(key, KeyOrigin{"identity", ic.name, false}) ==
            Keychain::AddOutcome::Added) {
            ++report.keys_added;
            log::debug("added " + who + " key " + key->id().hex() + " (" +
                      std::string(key_kind_name(key->kind())) + " " + std::to_string(key->bits()) +
                      ") from " + log::escape(ic.key_path, 1024));
        }
    }
    return report;
}

}  // namespace keychaind::file
