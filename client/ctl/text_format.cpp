// Encodings and printable forms for keychainctl's output.
#include "text_format.h"

#include <mbedtls/base64.h>

#include <ctime>

#include "core/crypto_backend.h"
#include "ctl.h"

namespace keychain::ctl {

std::string base64(std::span<const uint8_t> bytes) {
    size_t olen = 0;
    mbedtls_base64_encode(nullptr, 0, &olen, bytes.data(), bytes.size());
    std::string out(olen, '\0');
    if (mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &olen, bytes.data(),
                              bytes.size()) != 0)
        throw std::runtime_error("base64 encoding failed");
    out.resize(olen);
    return out;
}

std::optional<std::vector<uint8_t>> unbase64(std::string_view text) {
    std::string compact;
    for (char ch : text)
        if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t') compact += ch;
    if (compact.empty()) return std::nullopt;
    size_t olen = 0;
    std::vector<uint8_t> out(compact.size());
    if (mbedtls_base64_decode(out.data(), out.size(), &olen, reinterpret_cast<const unsigned char*>(compact.data()),
                              compact.size()) != 0)
        return std::nullopt;
    out.resize(olen);
    return out;
}

std::optional<std::vector<uint8_t>> unhex(std::string_view text) {
    std::string digits;
    for (char ch : text) {
        if (ch == ':' || ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
        if (!std::isxdigit(static_cast<unsigned char>(ch))) return std::nullopt;
        digits += ch;
    }
    if (digits.size() % 2 != 0) return std::nullopt;
    std::vector<uint8_t> out(digits.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoi(digits.substr(2 * i, 2), nullptr, 16));
    return out;
}

std::string pem(std::string_view label, std::span<const uint8_t> der) {
    const std::string b64 = base64(der);
    std::string out = "-----BEGIN " + std::string(label) + "-----\n";
    for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    out += "-----END " + std::string(label) + "-----\n";
    return out;
}

std::string printable(std::string_view text) {
    std::string out;
    for (char ch : text) {
        const auto u = static_cast<unsigned char>(ch);
        out += (u < 0x20 || u == 0x7f) ? '?' : ch;
    }
    return out;
}

std::string kind_name(int kind) {
    if (kind < 1 || kind > 5) return "unknown(" + std::to_string(kind) + ")";
    return std::string(keychaind::key_kind_name(static_cast<keychaind::KeyKind>(kind)));
}

std::string usages_name(uint8_t usages) {
    std::string s;
    const auto add = [&](const char* w) { s += s.empty() ? w : std::string(",") + w; };
    if (usages & KC_USAGE_SIGN) add("sign");
    if (usages & KC_USAGE_DECRYPT) add("decrypt");
    if (usages & KC_USAGE_WRAP) add("wrap");
    return s.empty() ? "-" : s;
}

std::string rfc3339(uint64_t epoch_seconds) {
    const auto t = static_cast<time_t>(epoch_seconds);
    tm utc{};
    gmtime_r(&t, &utc);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buf;
}

std::string key_info_line(const keychain::KeyInfo& k) {
    std::string line = k.id + "  " + kind_name(k.kind);
    if (k.bits != 0) line += "/" + std::to_string(k.bits);
    line += "  " + usages_name(k.usages) + "  " + printable(k.label.empty() ? "(no label)" : k.label);
    if (!k.present) line += "  [absent]";
    if (k.tethered) line += "  [tethered]";
    if (k.expires) line += "  [expires " + rfc3339(*k.expires) + "]";
    for (const auto& s : k.sources) line += "\n    " + printable(s);
    return line;
}

nlohmann::json key_info_json(const keychain::KeyInfo& k) {
    nlohmann::json j = {{"id", k.id},       {"label", k.label},        {"kind", kind_name(k.kind)},
                        {"bits", k.bits},   {"usages", nlohmann::json::array()},
                        {"sources", k.sources}, {"tethered", k.tethered}, {"present", k.present}};
    if (k.usages & KC_USAGE_SIGN) j["usages"].push_back("sign");
    if (k.usages & KC_USAGE_DECRYPT) j["usages"].push_back("decrypt");
    if (k.usages & KC_USAGE_WRAP) j["usages"].push_back("wrap");
    j["expires"] = k.expires ? nlohmann::json(rfc3339(*k.expires)) : nlohmann::json(nullptr);
    return j;
}

int sign_algorithm(const std::string& name) {
    for (uint8_t v = 1; keychaind::sign_algorithm_valid(v); ++v)
        if (keychaind::sign_algorithm_name(static_cast<keychaind::SignAlgorithm>(v)) == name) return v;
    usage_error("unknown signing algorithm '" + name + "' (one of: " + sign_algorithm_names() + ")");
}

int decrypt_algorithm(const std::string& name) {
    if (name == "rsa-oaep-sha1") return KC_DECRYPT_RSA_OAEP_SHA1;
    if (name == "rsa-oaep-sha256") return KC_DECRYPT_RSA_OAEP_SHA256;
    usage_error("unknown decryption algorithm '" + name + "' (rsa-oaep-sha1 or rsa-oaep-sha256)");
}

std::string sign_algorithm_names() {
    std::string s;
    for (uint8_t v = 1; keychaind::sign_algorithm_valid(v); ++v)
        s += (s.empty() ? "" : ", ") + std::string(keychaind::sign_algorithm_name(static_cast<keychaind::SignAlgorithm>(v)));
    return s;
}

}  // namespace keychain::ctl
