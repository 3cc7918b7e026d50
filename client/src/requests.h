// Building requests from the C API's arguments (shared by single calls and batches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "exchange.h"

namespace keychain::detail {

// Envelope limits of docs/protocol.md, checked before anything is sent.
inline constexpr size_t kMaxContext = 4096;
inline constexpr size_t kMaxDataKey = 1024;

// A caller's (pointer, length) pair; throws ClientError(KC_ERR_ARGUMENT) for NULL with a length.
std::span<const uint8_t> input_bytes(const uint8_t* p, size_t n, const char* what);
// An optional envelope context (NULL or empty = none), at most kMaxContext bytes.
std::span<const uint8_t> context_bytes(const uint8_t* p, size_t n);
// An algorithm value as the wire's u8 (1..255; the daemon judges whether it knows it).
uint8_t algorithm_byte(int alg);

Call sign_request(const char* key, int alg, const uint8_t* digest, size_t digest_len);
Call unwrap_request(const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context, size_t context_len);
Call generate_data_key_request(const char* kek, const uint8_t* context, size_t context_len);

}  // namespace keychain::detail

namespace keychain::detail {
// A request frame with request id 0 (set when it is sent).
inline keychaind::wire::MessageBuilder new_request(keychaind::wire::Opcode op) {
    return keychaind::wire::MessageBuilder(static_cast<uint8_t>(op), 0);
}
}  // namespace keychain::detail
