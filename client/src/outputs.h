// The C API's output types: filling them from reply fields, and their owners until handed over.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "keychain/client.h"
#include "protocol/message.h"

namespace keychain::detail {

// Owns a library-allocated kc_buffer until it is handed to the caller; wipes it otherwise.
class OwnedBuffer {
public:
    OwnedBuffer() = default;
    explicit OwnedBuffer(std::span<const uint8_t> bytes);  // throws std::bad_alloc
    OwnedBuffer(OwnedBuffer&& o) noexcept : b_(o.b_) { o.b_ = {}; }
    OwnedBuffer& operator=(OwnedBuffer&& o) noexcept;
    OwnedBuffer(const OwnedBuffer&) = delete;
    OwnedBuffer& operator=(const OwnedBuffer&) = delete;
    ~OwnedBuffer() { kc_buffer_free(&b_); }
    // Hands the bytes to *out (or wipes them when out is NULL).
    void release_to(kc_buffer* out) noexcept;

private:
    kc_buffer b_{};
};

// The field a reply must carry; throws ClientError(KC_ERR_PROTOCOL) naming it when absent.
std::span<const uint8_t> required(const keychaind::wire::Message& m, keychaind::wire::Tag t, std::string_view op,
                                  std::string_view field);
// Writes a 16- or 32-byte key id as NUL-terminated hex; throws ClientError(KC_ERR_PROTOCOL)
// for any other size.
void write_key_id(std::span<const uint8_t> id, char out[65]);
// A malloc'd NUL-terminated copy; throws std::bad_alloc.
char* copy_string(std::string_view s);
// Fills *out from KEY_INFO's nested fields; on an exception *out is left zeroed.
void fill_key_info(std::span<const uint8_t> nested, kc_key_info* out);
// Copies text into a fixed array, truncating, always NUL-terminated.
void copy_truncated(std::string_view s, char* out, size_t size);

}  // namespace keychain::detail
