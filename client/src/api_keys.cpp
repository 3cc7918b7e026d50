// Key operations: STATUS, LIST_KEYS, GET_PUBLIC, SIGN, DECRYPT, DISCOVER, WAIT.
#include <cstdlib>
#include <memory>
#include <new>

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

namespace {
// The daemon's default WAIT timeout (docs/protocol.md), when the caller leaves it to the daemon.
constexpr uint32_t kDaemonDefaultWaitMs = 30000;

void require_out(const void* p, const char* name) {
    if (p == nullptr) throw ClientError(KC_ERR_ARGUMENT, std::string(name) + " is NULL");
}
}  // namespace

extern "C" {

KC_API int kc_status(kc_client* c, kc_status_info* out) {
    if (out != nullptr) *out = kc_status_info{};
    return guarded(c, [&] {
        require_out(out, "out");
        Call call = keychain::detail::make_call(Opcode::Status, new_request(Opcode::Status));
        keychain::detail::perform(*c, call);
        const auto m = call.decoded();
        kc_status_info s{};
        keychain::detail::copy_truncated(m.get_string(Tag::Version).value_or(""), s.version, sizeof s.version);
        keychain::detail::copy_truncated(m.get_string(Tag::Backend).value_or(""), s.backend, sizeof s.backend);
        s.key_count = m.get_u32(Tag::Count).value_or(0);
        s.locked = m.get_u8(Tag::Locked).value_or(0) != 0;
        s.uptime_seconds = m.get_u64(Tag::UptimeSeconds).value_or(0);
        *out = s;
    });
}

KC_API int kc_list_keys(kc_client* c, int include_absent, kc_key_info** out, size_t* count) {
    if (out != nullptr) *out = nullptr;
    if (count != nullptr) *count = 0;
    return guarded(c, [&] {
        require_out(out, "out");
        require_out(count, "count");
        auto b = new_request(Opcode::ListKeys);
        if (include_absent != 0) b.u8(Tag::IncludeAbsent, 1);
        Call call = keychain::detail::make_call(Opcode::ListKeys, std::move(b));
        keychain::detail::perform(*c, call);
        const auto m = call.decoded();
        const auto infos = m.get_all(Tag::KeyInfo);
        // calloc: every entry starts with NULL strings, so a partial array frees cleanly.
        auto* raw = static_cast<kc_key_info*>(std::calloc(infos.empty() ? 1 : infos.size(), sizeof(kc_key_info)));
        if (raw == nullptr) throw std::bad_alloc();
        const size_t n = infos.size();
        auto free_all = [n](kc_key_info* p) { kc_key_info_free(p, n); };
        std::unique_ptr<kc_key_info, decltype(free_all)> array(raw, free_all);
        for (size_t i = 0; i < n; ++i) keychain::detail::fill_key_info(infos[i], &raw[i]);
        *out = array.release();
        *count = n;
    });
}

KC_API int kc_get_public(kc_client* c, const char* key, kc_public_info* out) {
    if (out != nullptr) *out = kc_public_info{};
    return guarded(c, [&] {
        require_out(out, "out");
        const auto sel = keychain::detail::parse_key_selector(key);
        auto b = new_request(Opcode::GetPublic);
        keychain::detail::add_key_selector(b, sel);
        Call call = keychain::detail::make_call(Opcode::GetPublic, std::move(b));
        keychain::detail::perform(*c, call);
        const auto m = call.decoded();
        kc_public_info info{};
        try {
            keychain::detail::write_key_id(required(m, Tag::KeyId, "GET_PUBLIC", "KEY_ID"), info.id);
            info.kind = m.get_u8(Tag::Kind).value_or(0);
            info.bits = m.get_u32(Tag::Bits).value_or(0);
            OwnedBuffer(required(m, Tag::PublicKey, "GET_PUBLIC", "PUBLIC_KEY")).release_to(&info.public_key);
            const auto certs = m.get_all(Tag::Certificate);
            info.certificates =
                static_cast<kc_buffer*>(std::calloc(certs.empty() ? 1 : certs.size(), sizeof(kc_buffer)));
            if (info.certificates == nullptr) throw std::bad_alloc();
            for (const auto& cert : certs) OwnedBuffer(cert).release_to(&info.certificates[info.certificate_count++]);
        } catch (...) {
            kc_public_info_clear(&info);
            throw;
        }
        *out = info;
    });
}

KC_API int kc_sign(kc_client* c, const char* key, int alg, const uint8_t* digest, size_t digest_len,
                   kc_buffer* signature) {
    if (signature != nullptr) *signature = kc_buffer{};
    return guarded(c, [&] {
        require_out(signature, "signature");
        Call call = keychain::detail::sign_request(key, alg, digest, digest_len);
        keychain::detail::perform(*c, call);
        OwnedBuffer(required(call.decoded(), Tag::Signature, "SIGN", "SIGNATURE")).release_to(signature);
    });
}

KC_API int kc_decrypt(kc_client* c, const char* key, int alg, const uint8_t* ciphertext, size_t ciphertext_len,
                      kc_buffer* plaintext) {
    if (plaintext != nullptr) *plaintext = kc_buffer{};
    return guarded(c, [&] {
        require_out(plaintext, "plaintext");
        const auto sel = keychain::detail::parse_key_selector(key);
        const auto data = keychain::detail::input_bytes(ciphertext, ciphertext_len, "ciphertext");
        if (data.empty()) throw ClientError(KC_ERR_ARGUMENT, "empty ciphertext");
        auto b = new_request(Opcode::Decrypt);
        keychain::detail::add_key_selector(b, sel);
        b.u8(Tag::Algorithm, keychain::detail::algorithm_byte(alg)).bytes(Tag::Data, data);
        Call call = keychain::detail::make_call(Opcode::Decrypt, std::move(b));
        keychain::detail::perform(*c, call);
        OwnedBuffer(required(call.decoded(), Tag::Plaintext, "DECRYPT", "PLAINTEXT")).release_to(plaintext);
    });
}

KC_API int kc_discover(kc_client* c, uint32_t* added) {
    if (added != nullptr) *added = 0;
    return guarded(c, [&] {
        Call call = keychain::detail::make_call(Opcode::Discover, new_request(Opcode::Discover));
        keychain::detail::perform(*c, call);
        const uint32_t n = call.decoded().get_u32(Tag::Count).value_or(0);
        if (added != nullptr) *added = n;
    });
}

KC_API int kc_wait(kc_client* c, const char* key, uint32_t timeout_ms, kc_key_info* out) {
    if (out != nullptr) *out = kc_key_info{};
    return guarded(c, [&] {
        const auto sel = keychain::detail::parse_key_selector(key);
        auto b = new_request(Opcode::Wait);
        keychain::detail::add_key_selector(b, sel);
        if (timeout_ms != 0) b.u32(Tag::TimeoutMs, timeout_ms);
        Call call = keychain::detail::make_call(Opcode::Wait, std::move(b));
        call.extra_wait_ms = timeout_ms != 0 ? timeout_ms : kDaemonDefaultWaitMs;
        keychain::detail::perform(*c, call);
        const auto m = call.decoded();
        const auto info = required(m, Tag::KeyInfo, "WAIT", "KEY_INFO");
        if (out != nullptr) keychain::detail::fill_key_info(info, out);
    });
}

}  // extern "C"
