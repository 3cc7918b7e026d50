// Envelope operations: GENERATE_DATA_KEY, WRAP, UNWRAP, REWRAP.
#include "api_guard.h"
#include "key_selector.h"
#include "outputs.h"
#include "requests.h"

using keychain::detail::Call;
using keychain::detail::ClientError;
using keychain::detail::guarded;
using keychain::detail::new_request;
using keychain::detail::OwnedBuffer;
using keychain::detail::required;
using keychaind::wire::Opcode;
using keychaind::wire::Tag;

extern "C" {

KC_API int kc_generate_data_key(kc_client* c, const char* kek, const uint8_t* context, size_t context_len,
                                kc_buffer* data_key, kc_buffer* wrapped) {
    if (data_key != nullptr) *data_key = kc_buffer{};
    if (wrapped != nullptr) *wrapped = kc_buffer{};
    return guarded(c, [&] {
        if (data_key == nullptr || wrapped == nullptr)
            throw ClientError(KC_ERR_ARGUMENT, "data_key and wrapped must not be NULL");
        Call call = keychain::detail::generate_data_key_request(kek, context, context_len);
        keychain::detail::perform(*c, call);
        const auto m = call.decoded();
        OwnedBuffer key(required(m, Tag::DataKey, "GENERATE_DATA_KEY", "DATA_KEY"));
        OwnedBuffer blob(required(m, Tag::Wrapped, "GENERATE_DATA_KEY", "WRAPPED"));
        key.release_to(data_key);
        blob.release_to(wrapped);
    });
}

KC_API int kc_wrap(kc_client* c, const char* kek, const uint8_t* data_key, size_t data_key_len,
                   const uint8_t* context, size_t context_len, kc_buffer* wrapped) {
    if (wrapped != nullptr) *wrapped = kc_buffer{};
    return guarded(c, [&] {
        if (wrapped == nullptr) throw ClientError(KC_ERR_ARGUMENT, "wrapped is NULL");
        const auto sel = keychain::detail::parse_key_selector(kek);
        const auto key = keychain::detail::input_bytes(data_key, data_key_len, "data key");
        if (key.empty() || key.size() > keychain::detail::kMaxDataKey)
            throw ClientError(KC_ERR_ARGUMENT, "a data key is 1.." + std::to_string(keychain::detail::kMaxDataKey) +
                                                   " bytes, got " + std::to_string(key.size()));
        const auto ctx = keychain::detail::context_bytes(context, context_len);
        auto b = new_request(Opcode::Wrap);
        keychain::detail::add_key_selector(b, sel);
        b.bytes(Tag::DataKey, key);
        if (!ctx.empty()) b.bytes(Tag::Context, ctx);
        Call call = keychain::detail::make_call(Opcode::Wrap, std::move(b));
        keychain::detail::perform(*c, call);
        OwnedBuffer(required(call.decoded(), Tag::Wrapped, "WRAP", "WRAPPED")).release_to(wrapped);
    });
}

KC_API int kc_unwrap(kc_client* c, const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context,
                     size_t context_len, kc_buffer* data_key) {
    if (data_key != nullptr) *data_key = kc_buffer{};
    return guarded(c, [&] {
        if (data_key == nullptr) throw ClientError(KC_ERR_ARGUMENT, "data_key is NULL");
        Call call = keychain::detail::unwrap_request(wrapped, wrapped_len, context, context_len);
        keychain::detail::perform(*c, call);
        OwnedBuffer(required(call.decoded(), Tag::DataKey, "UNWRAP", "DATA_KEY")).release_to(data_key);
    });
}

KC_API int kc_rewrap(kc_client* c, const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context,
                     size_t context_len, const char* target_kek, kc_buffer* rewrapped) {
    if (rewrapped != nullptr) *rewrapped = kc_buffer{};
    return guarded(c, [&] {
        if (rewrapped == nullptr) throw ClientError(KC_ERR_ARGUMENT, "rewrapped is NULL");
        const auto w = keychain::detail::input_bytes(wrapped, wrapped_len, "wrapped key");
        if (w.empty()) throw ClientError(KC_ERR_ARGUMENT, "empty wrapped key");
        const auto ctx = keychain::detail::context_bytes(context, context_len);
        const auto target = keychain::detail::parse_key_selector(target_kek);
        auto b = new_request(Opcode::Rewrap);
        b.bytes(Tag::Wrapped, w);
        if (!ctx.empty()) b.bytes(Tag::Context, ctx);
        keychain::detail::add_key_selector(b, target, Tag::TargetKeyId, Tag::TargetLabel);
        Call call = keychain::detail::make_call(Opcode::Rewrap, std::move(b));
        keychain::detail::perform(*c, call);
        OwnedBuffer(required(call.decoded(), Tag::Wrapped, "REWRAP", "WRAPPED")).release_to(rewrapped);
    });
}

}  // extern "C"
