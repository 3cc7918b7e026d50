// BenchKeys: key material made with mbedTLS (through the test fixtures), never by the daemon.
#include "bench_keys.h"

#include <fcntl.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/crypto_backend.h"
#include "test_keys.h"

namespace keychaind::bench {
namespace {

std::string generate_rsa_2048_pem() {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    struct Free {
        mbedtls_pk_context* p;
        ~Free() { mbedtls_pk_free(p); }
    } guard{&pk};
    if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0 ||
        mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), test::random_bytes, nullptr, 2048, 65537) != 0)
        throw std::runtime_error("RSA-2048 key generation failed");
    std::string pem(16000, '\0');
    if (mbedtls_pk_write_key_pem(&pk, reinterpret_cast<unsigned char*>(pem.data()), pem.size()) !=
        0)
        throw std::runtime_error("writing the RSA key as PEM failed");
    pem.resize(pem.find('\0'));
    return pem;
}

FileKey file_key(std::string pem) {
    const auto bytes = std::span(reinterpret_cast<const uint8_t*>(pem.data()), pem.size());
    const auto key = crypto_backend().parse_private_key(bytes);
    return {std::move(pem), KeyId::for_public_key(key->public_key_der())};
}

std::string hex(std::span<const uint8_t> b) { return to_hex(b); }

}  // namespace

void write_private_file(const std::string& path, std::string_view content) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + path);
    const bool ok =
        ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    close(fd);
    if (!ok) throw std::runtime_error("cannot write " + path);
}

BenchKeys::BenchKeys()
    : ec_(file_key(test::make_identity(KeyKind::EcP256, 0, "bench ec").key_pem_legacy)),
      rsa_(file_key(generate_rsa_2048_pem())),
      kek_(32) {
    crypto_backend().random(kek_.span());
    kek_id_ = KeyId::for_symmetric_key(kek_.span());
}

void BenchKeys::write_keychain_dir(const std::string& dir) const {
    mkdir(dir.c_str(), 0700);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "bench-kek"}, {"encodedKey", hex(kek_.span())}});
    j.push_back({{"name", "bench-ec"}, {"privateKey", ec_.pem}});
    j.push_back({{"name", "bench-rsa"}, {"privateKey", rsa_.pem}});
    write_private_file(dir + "/bench.4DKeyChain", j.dump());
}

std::vector<std::string> BenchKeys::write_pem_files(const std::string& dir) const {
    const std::vector<std::string> paths = {dir + "/ec.pem", dir + "/rsa.pem"};
    write_private_file(paths[0], ec_.pem);
    write_private_file(paths[1], rsa_.pem);
    return paths;
}

void write_aes_key_dir(const std::string& dir, int count) {
    mkdir(dir.c_str(), 0700);
    constexpr int kPerFile = 1000;  // ~90 KB a file, well under the 1 MiB file limit
    for (int file = 0; file * kPerFile < count; ++file) {
        nlohmann::json j = nlohmann::json::array();
        for (int i = file * kPerFile; i < std::min(count, (file + 1) * kPerFile); ++i) {
            uint8_t key[32];
            crypto_backend().random(key);
            j.push_back({{"encodedKey", hex(key)}});
            secure_wipe(key, sizeof key);
        }
        write_private_file(dir + "/aes-" + std::to_string(file) + ".4DKeyChain", j.dump());
    }
}

}  // namespace keychaind::bench
