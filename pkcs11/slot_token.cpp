// Slot and token descriptions: one slot, always holding the keychaind token.
#include "slot_token.h"

#include <mbedtls/sha256.h>

#include <cstring>

namespace keychaind::pkcs11 {
namespace {

constexpr const char* kManufacturer = "keychaind";

// PKCS#11 text fields are blank-padded, not NUL-terminated; text too long is cut at a UTF-8
// character boundary.
template <size_t N>
void fill(unsigned char (&field)[N], const std::string& text) {
    std::memset(field, ' ', N);
    size_t n = std::min(text.size(), N);
    while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    std::memcpy(field, text.data(), n);
}

CK_VERSION project_version() {
    return CK_VERSION{static_cast<unsigned char>(KEYCHAIND_PKCS11_VERSION_MAJOR),
                      static_cast<unsigned char>(KEYCHAIND_PKCS11_VERSION_MINOR)};
}

}  // namespace

CK_INFO module_info() {
    CK_INFO info{};
    info.cryptokiVersion = CK_VERSION{2, 40};
    fill(info.manufacturerID, kManufacturer);
    info.flags = 0;
    fill(info.libraryDescription, "keychaind PKCS#11 module");
    info.libraryVersion = project_version();
    return info;
}

CK_SLOT_INFO slot_info() {
    CK_SLOT_INFO info{};
    fill(info.slotDescription, "keychaind daemon");
    fill(info.manufacturerID, kManufacturer);
    info.flags = CKF_TOKEN_PRESENT;
    info.hardwareVersion = project_version();
    info.firmwareVersion = project_version();
    return info;
}

CK_TOKEN_INFO token_info(const ModuleConfig& config, size_t sessions, size_t rw_sessions) {
    CK_TOKEN_INFO info{};
    fill(info.label, config.token_label);
    fill(info.manufacturerID, kManufacturer);
    fill(info.model, "keychaind");
    uint8_t digest[32];
    mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(config.socket_path.data()),
                       config.socket_path.size(), digest, 0);
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string serial;
    for (size_t i = 0; i < 8; ++i) {
        serial += kDigits[digest[i] >> 4];
        serial += kDigits[digest[i] & 15];
    }
    fill(info.serialNumber, serial);
    // No CKF_LOGIN_REQUIRED: the daemon's policy decides who may use a key. A PIN is still
    // accepted (and ignored) from callers that log in anyway. No CKF_WRITE_PROTECTED either,
    // since that would forbid read/write sessions, which some tools insist on; no object can be
    // created or changed all the same.
    info.flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
    info.ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info.ulSessionCount = sessions;
    info.ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    info.ulRwSessionCount = rw_sessions;
    info.ulMaxPinLen = 256;
    info.ulMinPinLen = 0;
    info.ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info.ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info.ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info.ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info.hardwareVersion = project_version();
    info.firmwareVersion = project_version();
    std::memset(info.utcTime, ' ', sizeof info.utcTime);  // no clock on this token
    return info;
}

}  // namespace keychaind::pkcs11
