// Admin operations: PROVIDE, FORGET, LOCK, UNLOCK.
#include <cstring>
#include <string_view>

#include "api_guard.h"
#include "key_selector.h"
#include "outputs.h"
#include "requests.h"

using keychain::detail::Call;
using keychain::detail::ClientError;
using keychain::detail::guarded;
using keychain::detail::new_request;
using keychain::detail::required;
using keychaind::wire::Opcode;
using keychaind::wire::Tag;

namespace {

// PROVIDE with PASSPHRASE or ENCODED_KEY; the secret goes only into the (wiping) frame.
void provide(kc_client& c, Tag secret_tag, const char* secret, const char* what, const char* label,
             uint64_t expires, char* key_id_hex) {
    if (key_id_hex != nullptr) key_id_hex[0] = '\0';
    if (secret == nullptr || *secret == '\0') throw ClientError(KC_ERR_ARGUMENT, std::string("empty ") + what);
    auto b = new_request(Opcode::Provide);
    b.str(secret_tag, std::string_view(secret));
    if (label != nullptr && *label != '\0') {
        if (!keychaind::wire::is_utf8(label)) throw ClientError(KC_ERR_ARGUMENT, "label is not UTF-8");
        b.str(Tag::Label, label);
    }
    if (expires != 0) b.u64(Tag::Expires, expires);
    Call call = keychain::detail::make_call(Opcode::Provide, std::move(b));
    keychain::detail::perform(c, call);
    char id[65];
    keychain::detail::write_key_id(required(call.decoded(), Tag::KeyId, "PROVIDE", "KEY_ID"), id);
    if (key_id_hex != nullptr) std::memcpy(key_id_hex, id, sizeof id);
}

void lock_or_unlock(kc_client& c, Opcode op, const char* password) {
    auto b = new_request(op);
    if (password != nullptr && *password != '\0') b.str(Tag::Passphrase, std::string_view(password));
    Call call = keychain::detail::make_call(op, std::move(b));
    keychain::detail::perform(c, call);
}

}  // namespace

extern "C" {

KC_API int kc_provide_passphrase(kc_client* c, const char* passphrase, const char* label, uint64_t expires,
                                 char key_id_hex[65]) {
    return guarded(c, [&] { provide(*c, Tag::Passphrase, passphrase, "passphrase", label, expires, key_id_hex); });
}

KC_API int kc_provide_encoded_key(kc_client* c, const char* encoded_key, const char* label, uint64_t expires,
                                  char key_id_hex[65]) {
    return guarded(c, [&] { provide(*c, Tag::EncodedKey, encoded_key, "encoded key", label, expires, key_id_hex); });
}

KC_API int kc_provide_pin(kc_client* c, const char* token, const char* pin, uint32_t* added) {
    if (added != nullptr) *added = 0;
    return guarded(c, [&] {
        if (token == nullptr || *token == '\0') throw ClientError(KC_ERR_ARGUMENT, "no token named");
        if (!keychaind::wire::is_utf8(token)) throw ClientError(KC_ERR_ARGUMENT, "the token name is not UTF-8");
        if (pin == nullptr || *pin == '\0') throw ClientError(KC_ERR_ARGUMENT, "empty PIN");
        auto b = new_request(Opcode::Provide);
        b.str(Tag::Pin, std::string_view(pin));  // only into the (wiping) frame
        b.str(Tag::TokenUri, token);
        Call call = keychain::detail::make_call(Opcode::Provide, std::move(b));
        keychain::detail::perform(*c, call);
        const uint32_t n = call.decoded().get_u32(Tag::Count).value_or(0);
        if (added != nullptr) *added = n;
    });
}

KC_API int kc_forget(kc_client* c, const char* key, uint32_t* count) {
    if (count != nullptr) *count = 0;
    return guarded(c, [&] {
        auto b = new_request(Opcode::Forget);
        if (key != nullptr) keychain::detail::add_key_selector(b, keychain::detail::parse_key_selector(key));
        Call call = keychain::detail::make_call(Opcode::Forget, std::move(b));
        keychain::detail::perform(*c, call);
        const uint32_t n = call.decoded().get_u32(Tag::Count).value_or(0);
        if (count != nullptr) *count = n;
    });
}

KC_API int kc_lock(kc_client* c, const char* password) {
    return guarded(c, [&] { lock_or_unlock(*c, Opcode::Lock, password); });
}

KC_API int kc_unlock(kc_client* c, const char* password) {
    return guarded(c, [&] { lock_or_unlock(*c, Opcode::Unlock, password); });
}

}  // extern "C"
