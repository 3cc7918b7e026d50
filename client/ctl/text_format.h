// keychainctl's encodings and printable forms: base64, hex, PEM, key info lines and JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keychain/client.hpp"

namespace keychain::ctl {

std::string base64(std::span<const uint8_t> bytes);
// Ignores whitespace; nullopt when the text is not base64.
std::optional<std::vector<uint8_t>> unbase64(std::string_view text);
// Even-length hex (":" and whitespace ignored); nullopt otherwise.
std::optional<std::vector<uint8_t>> unhex(std::string_view text);
std::string pem(std::string_view label, std::span<const uint8_t> der);
// Control characters replaced, so a daemon's message cannot drive the terminal.
std::string printable(std::string_view text);
std::string kind_name(int kind);
std::string usages_name(uint8_t usages);
std::string rfc3339(uint64_t epoch_seconds);

std::string key_info_line(const keychain::KeyInfo& k);
nlohmann::json key_info_json(const keychain::KeyInfo& k);

// SIGN / DECRYPT algorithm values by their docs/protocol.md names; usage_error otherwise.
int sign_algorithm(const std::string& name);
int decrypt_algorithm(const std::string& name);
std::string sign_algorithm_names();

}  // namespace keychain::ctl
