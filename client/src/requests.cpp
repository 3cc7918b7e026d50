// Request builders with their argument checks.
#include "requests.h"

#include <string>

#include "client_error.h"
#include "key_selector.h"
#include "keychain/client.h"

namespace keychain::detail {

using keychaind::wire::Opcode;
using keychaind::wire::Tag;

std::span<const uint8_t> input_bytes(const uint8_t* p, size_t n, const char* what) {
    if (p == nullptr && n != 0) throw ClientError(KC_ERR_ARGUMENT, std::string(what) + " is NULL");
    if (n == 0) return {};
    return {p, n};
}

std::span<const uint8_t> context_bytes(const uint8_t* p, size_t n) {
    auto s = input_bytes(p, n, "context");
    if (s.size() > kMaxContext)
        throw ClientError(KC_ERR_ARGUMENT, "context of " + std::to_string(s.size()) + " bytes is over the limit of " +
                                               std::to_string(kMaxContext));
    return s;
}

uint8_t algorithm_byte(int alg) {
    if (alg < 1 || alg > 255) throw ClientError(KC_ERR_ARGUMENT, "algorithm " + std::to_string(alg) + " is out of range");
    return static_cast<uint8_t>(alg);
}

Call sign_request(const char* key, int alg, const uint8_t* digest, size_t digest_len) {
    const KeySelector sel = parse_key_selector(key);
    const auto data = input_bytes(digest, digest_len, "digest");
    if (data.empty()) throw ClientError(KC_ERR_ARGUMENT, "empty digest");
    auto b = new_request(Opcode::Sign);
    add_key_selector(b, sel);
    b.u8(Tag::Algorithm, algorithm_byte(alg)).bytes(Tag::Data, data);
    return make_call(Opcode::Sign, std::move(b));
}

Call unwrap_request(const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context, size_t context_len) {
    const auto w = input_bytes(wrapped, wrapped_len, "wrapped key");
    if (w.empty()) throw ClientError(KC_ERR_ARGUMENT, "empty wrapped key");
    const auto ctx = context_bytes(context, context_len);
    auto b = new_request(Opcode::Unwrap);
    b.bytes(Tag::Wrapped, w);
    if (!ctx.empty()) b.bytes(Tag::Context, ctx);
    return make_call(Opcode::Unwrap, std::move(b));
}

Call generate_data_key_request(const char* kek, const uint8_t* context, size_t context_len) {
    const KeySelector sel = parse_key_selector(kek);
    const auto ctx = context_bytes(context, context_len);
    auto b = new_request(Opcode::GenerateDataKey);
    add_key_selector(b, sel);
    if (!ctx.empty()) b.bytes(Tag::Context, ctx);
    return make_call(Opcode::GenerateDataKey, std::move(b));
}

}  // namespace keychain::detail
