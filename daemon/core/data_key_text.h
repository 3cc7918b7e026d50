// The textual forms of a 256-bit data key in .4DKeyChain files and PROVIDE requests.
#pragma once

#include <string_view>

#include "core/secret_bytes.h"

namespace keychaind {

// 64 hexadecimal digits or the 44-character base64 form of 32 bytes. Throws
// KeychainError(BadRequest) naming what is wrong (never echoing the text).
SecretBytes decode_encoded_key(std::string_view text);
// SHA-256 of the passphrase's UTF-8 bytes (docs/keychain-file.md). Empty passphrases are refused.
SecretBytes passphrase_key(std::string_view passphrase);
// 64 lowercase hex digits of a 32-byte key, in secure memory.
SecretBytes encode_key_hex(const SecretBytes& key);

}  // namespace keychaind
