// The soak's key set, made fresh for each run.
#include "soak_keys.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/crypto_backend.h"
#include "test_keys.h"

namespace keychaind::soak {
namespace {

std::string random_hex_key() {
    std::vector<uint8_t> key(32);
    crypto_backend().random(key);
    std::string hex;
    char digit[3];
    for (const uint8_t b : key) {
        std::snprintf(digit, sizeof digit, "%02x", b);
        hex += digit;
    }
    return hex;
}

void write_keychain_file(const std::string& path, const std::string& contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
    out.close();
    if (!out || chmod(path.c_str(), 0600) != 0) throw std::runtime_error("cannot write " + path);
}

}  // namespace

SoakKeys make_soak_keys(const std::string& keys_dir, size_t churn_files, size_t churn_provided) {
    SoakKeys k;
    k.keys_dir = keys_dir;
    const auto ec = test::make_identity(KeyKind::EcP256);
    const auto rsa = test::make_identity(KeyKind::Rsa, 2048);
    k.ec_spki = ec.spki_der;
    k.rsa_spki = rsa.spki_der;
    k.keks = {"kek-1", "kek-2"};
    nlohmann::json fixed = nlohmann::json::array();
    fixed.push_back({{"name", "ec"}, {"privateKey", ec.key_pem_pkcs8}});
    fixed.push_back({{"name", "rsa"}, {"privateKey", rsa.key_pem_legacy}});
    for (const auto& label : k.keks) fixed.push_back({{"name", label}, {"encodedKey", random_hex_key()}});
    write_keychain_file(keys_dir + "/fixed.4DKeyChain", fixed.dump());

    for (size_t i = 0; i < churn_files; ++i) {
        const auto id = test::make_identity(KeyKind::EcP256);
        ChurnFileKey c;
        c.label = "churn-ec-" + std::to_string(i);
        c.path = keys_dir + "/" + c.label + ".4DKeyChain";
        c.contents = nlohmann::json{{"name", c.label}, {"privateKey", id.key_pem_pkcs8}, {"tethered", true}}.dump();
        c.spki = id.spki_der;
        k.churn_files.push_back(std::move(c));
    }
    for (size_t i = 0; i < churn_provided; ++i)
        k.churn_provided.push_back({"churn-kek-" + std::to_string(i), random_hex_key()});
    return k;
}

void write_churn_file(const ChurnFileKey& key) {
    // Written under another name and renamed, so a scan never sees half a file.
    const std::string tmp = key.path + ".tmp";
    write_keychain_file(tmp, key.contents);
    if (std::rename(tmp.c_str(), key.path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp);
}

}  // namespace keychaind::soak
