// SoakKeys: the keys a soak runs with — fixed ones the daemon reads at start, and the churn pool
// the admin thread adds and drops again and again.
#pragma once

#include <string>
#include <vector>

namespace keychaind::soak {

// A tethered EC P-256 key in its own keychain file: present while the file is there (after a
// DISCOVER), KEY_NOT_PRESENT once the file is gone and the directory scanned again.
struct ChurnFileKey {
    std::string label;
    std::string path;      // keys_dir/<label>.4DKeyChain
    std::string contents;  // the file's JSON
    std::vector<uint8_t> spki;
};

// An AES-256 KEK given with PROVIDE and dropped with FORGET.
struct ChurnProvidedKey {
    std::string label;
    std::string encoded_key;  // 64 hex digits: test material, made for this run
};

struct SoakKeys {
    std::string keys_dir;
    std::vector<uint8_t> ec_spki;   // label "ec", EC P-256
    std::vector<uint8_t> rsa_spki;  // label "rsa", RSA-2048
    std::vector<std::string> keks;  // AES-256 KEK labels
    std::vector<ChurnFileKey> churn_files;
    std::vector<ChurnProvidedKey> churn_provided;

    size_t fixed_count() const { return 2 + keks.size(); }
    size_t churn_count() const { return churn_files.size() + churn_provided.size(); }
};

// Writes keys_dir/fixed.4DKeyChain and makes the churn pool (its files are not written yet).
SoakKeys make_soak_keys(const std::string& keys_dir, size_t churn_files, size_t churn_provided);

// Puts a churn key's file in place (the next DISCOVER adds the key).
void write_churn_file(const ChurnFileKey& key);

}  // namespace keychaind::soak
