// The keys every system under test gets: an EC P-256 and an RSA-2048 file key (the daemon reads
// them from a .4DKeyChain file, ssh-agent from PEM files), an AES-256 KEK, and key directories of
// many AES keys for the memory check.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/key_id.h"
#include "core/secret_bytes.h"

namespace keychaind::bench {

struct FileKey {
    std::string pem;  // SEC1 or PKCS#1: both the daemon and ssh-add read these
    KeyId id;
};

class BenchKeys {
  public:
    // EC from the test fixtures; RSA-2048 generated here, since the fixtures' RSA key is shared
    // with the SoftHSM2 token and a key in two places would be one keychain entry.
    BenchKeys();

    const FileKey& ec() const { return ec_; }
    const FileKey& rsa() const { return rsa_; }
    const KeyId& kek_id() const { return kek_id_; }

    // `dir`/bench.4DKeyChain with "bench-kek", "bench-ec" and "bench-rsa"; mode 0600.
    void write_keychain_dir(const std::string& dir) const;
    // PEM files for ssh-add (mode 0600): returns {ec path, rsa path}.
    std::vector<std::string> write_pem_files(const std::string& dir) const;

  private:
    FileKey ec_;
    FileKey rsa_;
    SecretBytes kek_;
    KeyId kek_id_;
};

// `count` random AES-256 keys in .4DKeyChain files of 1000 entries under `dir`.
void write_aes_key_dir(const std::string& dir, int count);

// A file with mode 0600.
void write_private_file(const std::string& path, std::string_view content);

}  // namespace keychaind::bench
