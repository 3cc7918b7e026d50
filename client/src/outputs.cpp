// Output types: kc_buffer, kc_key_info, kc_public_info, kc_event, their fillers and freers.
#include "outputs.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "client_error.h"
#include "core/secret_bytes.h"

namespace keychain::detail {

using keychaind::wire::Tag;

OwnedBuffer::OwnedBuffer(std::span<const uint8_t> bytes) {
    // Never malloc(0): a successful result always has a non-NULL pointer.
    auto* p = static_cast<uint8_t*>(std::malloc(bytes.empty() ? 1 : bytes.size()));
    if (p == nullptr) throw std::bad_alloc();
    if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
    b_ = {p, bytes.size()};
}

OwnedBuffer& OwnedBuffer::operator=(OwnedBuffer&& o) noexcept {
    if (this != &o) {
        kc_buffer_free(&b_);
        b_ = o.b_;
        o.b_ = {};
    }
    return *this;
}

void OwnedBuffer::release_to(kc_buffer* out) noexcept {
    if (out != nullptr) {
        *out = b_;
        b_ = {};
    } else {
        kc_buffer_free(&b_);
    }
}

std::span<const uint8_t> required(const keychaind::wire::Message& m, Tag t, std::string_view op,
                                  std::string_view field) {
    auto v = m.get(t);
    if (!v)
        throw ClientError(KC_ERR_PROTOCOL,
                          "keychaind's " + std::string(op) + " reply has no " + std::string(field) + " field");
    return *v;
}

void write_key_id(std::span<const uint8_t> id, char out[65]) {
    static constexpr char kDigits[] = "0123456789abcdef";
    if (id.size() != 16 && id.size() != 32)
        throw ClientError(KC_ERR_PROTOCOL, "keychaind sent a key id of " + std::to_string(id.size()) +
                                               " bytes (want 16 or 32)");
    for (size_t i = 0; i < id.size(); ++i) {
        out[2 * i] = kDigits[id[i] >> 4];
        out[2 * i + 1] = kDigits[id[i] & 15];
    }
    out[2 * id.size()] = '\0';
}

char* copy_string(std::string_view s) {
    auto* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p == nullptr) throw std::bad_alloc();
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
}

void copy_truncated(std::string_view s, char* out, size_t size) {
    const size_t n = std::min(s.size(), size - 1);
    std::memcpy(out, s.data(), n);
    out[n] = '\0';
}

void fill_key_info(std::span<const uint8_t> nested, kc_key_info* out) {
    *out = kc_key_info{};
    keychaind::wire::Message m;
    m.fields = keychaind::wire::decode_fields(nested);
    kc_key_info info{};
    write_key_id(required(m, Tag::KeyId, "KEY_INFO", "KEY_ID"), info.id);
    const std::string label = m.get_string(Tag::Label).value_or("");
    std::string sources;
    for (auto s : m.get_all(Tag::Source)) {
        const std::string_view text(reinterpret_cast<const char*>(s.data()), s.size());
        if (!keychaind::wire::is_utf8(text) || text.find('\0') != std::string_view::npos)
            throw ClientError(KC_ERR_PROTOCOL, "keychaind sent a SOURCE that is not UTF-8 text");
        if (!sources.empty()) sources += '\n';
        sources += text;
    }
    info.kind = m.get_u8(Tag::Kind).value_or(0);
    info.bits = m.get_u32(Tag::Bits).value_or(0);
    info.usages = m.get_u8(Tag::Usages).value_or(0);
    info.tethered = m.get_u8(Tag::Tethered).value_or(0) != 0;
    info.expires = m.get_u64(Tag::Expires).value_or(0);
    info.present = m.get_u8(Tag::Present).value_or(1) != 0;

    std::unique_ptr<char, decltype(&std::free)> label_copy(copy_string(label), &std::free);
    info.sources = copy_string(sources);
    info.label = label_copy.release();
    *out = info;
}

}  // namespace keychain::detail

extern "C" {

KC_API void kc_buffer_free(kc_buffer* b) {
    if (b == nullptr) return;
    if (b->data != nullptr) {
        keychaind::secure_wipe(b->data, b->len);
        std::free(b->data);
    }
    b->data = nullptr;
    b->len = 0;
}

KC_API void kc_key_info_clear(kc_key_info* info) {
    if (info == nullptr) return;
    std::free(info->label);
    std::free(info->sources);
    *info = kc_key_info{};
}

KC_API void kc_key_info_free(kc_key_info* infos, size_t count) {
    if (infos == nullptr) return;
    for (size_t i = 0; i < count; ++i) kc_key_info_clear(&infos[i]);
    std::free(infos);
}

KC_API void kc_public_info_clear(kc_public_info* info) {
    if (info == nullptr) return;
    kc_buffer_free(&info->public_key);
    if (info->certificates != nullptr) {
        for (size_t i = 0; i < info->certificate_count; ++i) kc_buffer_free(&info->certificates[i]);
        std::free(info->certificates);
    }
    *info = kc_public_info{};
}

KC_API void kc_event_clear(kc_event* ev) {
    if (ev == nullptr) return;
    kc_key_info_clear(&ev->key);
    std::free(ev->reason);
    *ev = kc_event{};
}

}  // extern "C"
