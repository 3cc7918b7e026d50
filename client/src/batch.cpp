// kc_batch: many SIGN / UNWRAP / GENERATE_DATA_KEY requests pipelined on one connection.
#include <memory>
#include <new>
#include <vector>

#include "api_guard.h"
#include "outputs.h"
#include "requests.h"

using keychain::detail::Call;
using keychain::detail::ClientError;
using keychain::detail::OwnedBuffer;
using keychain::detail::required;
using keychaind::WipingBuffer;
using keychaind::wire::Tag;

struct kc_batch {
    enum class Kind { Sign, Unwrap, GenerateDataKey };
    struct Item {
        Kind kind = Kind::Sign;
        Call call;
        bool ran = false;
        WipingBuffer result;   // signature, or data key
        WipingBuffer wrapped;  // GenerateDataKey: the wrapped form
    };
    std::vector<Item> items;
};

namespace {

WipingBuffer copy(std::span<const uint8_t> s) { return WipingBuffer(s.begin(), s.end()); }

// Takes a successful reply's result out of its frame.
void extract(kc_batch::Item& item) {
    const auto m = item.call.decoded();
    switch (item.kind) {
        case kc_batch::Kind::Sign: item.result = copy(required(m, Tag::Signature, "SIGN", "SIGNATURE")); break;
        case kc_batch::Kind::Unwrap: item.result = copy(required(m, Tag::DataKey, "UNWRAP", "DATA_KEY")); break;
        case kc_batch::Kind::GenerateDataKey:
            item.result = copy(required(m, Tag::DataKey, "GENERATE_DATA_KEY", "DATA_KEY"));
            item.wrapped = copy(required(m, Tag::Wrapped, "GENERATE_DATA_KEY", "WRAPPED"));
            break;
    }
}

template <class Build>
int add(kc_batch* b, kc_batch::Kind kind, size_t* index, Build&& build) noexcept {
    if (b == nullptr) return KC_ERR_ARGUMENT;
    try {
        kc_batch::Item item;
        item.kind = kind;
        item.call = build();
        b->items.push_back(std::move(item));
        if (index != nullptr) *index = b->items.size() - 1;
        return KC_OK;
    } catch (const ClientError& e) {
        return e.code();
    } catch (const std::bad_alloc&) {
        return KC_ERR_NOMEM;
    } catch (...) {
        return KC_ERR_INTERNAL;
    }
}

int result(const kc_batch* b, size_t i, kc_buffer* out, bool wrapped) noexcept {
    if (out != nullptr) *out = kc_buffer{};
    if (b == nullptr || i >= b->items.size()) return KC_ERR_ARGUMENT;
    const auto& item = b->items[i];
    if (!item.ran) return KC_ERR_ARGUMENT;
    if (wrapped && item.kind != kc_batch::Kind::GenerateDataKey) return KC_ERR_ARGUMENT;
    if (item.call.code != KC_OK || out == nullptr) return item.call.code;
    try {
        OwnedBuffer(wrapped ? item.wrapped : item.result).release_to(out);
    } catch (const std::bad_alloc&) {
        return KC_ERR_NOMEM;
    }
    return KC_OK;
}

}  // namespace

extern "C" {

KC_API kc_batch* kc_batch_new(void) { return new (std::nothrow) kc_batch; }

KC_API void kc_batch_free(kc_batch* b) { delete b; }

KC_API size_t kc_batch_size(const kc_batch* b) { return b != nullptr ? b->items.size() : 0; }

KC_API int kc_batch_add_sign(kc_batch* b, const char* key, int alg, const uint8_t* digest, size_t digest_len,
                             size_t* index) {
    return add(b, kc_batch::Kind::Sign, index,
               [&] { return keychain::detail::sign_request(key, alg, digest, digest_len); });
}

KC_API int kc_batch_add_unwrap(kc_batch* b, const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context,
                               size_t context_len, size_t* index) {
    return add(b, kc_batch::Kind::Unwrap, index,
               [&] { return keychain::detail::unwrap_request(wrapped, wrapped_len, context, context_len); });
}

KC_API int kc_batch_add_generate_data_key(kc_batch* b, const char* kek, const uint8_t* context, size_t context_len,
                                          size_t* index) {
    return add(b, kc_batch::Kind::GenerateDataKey, index,
               [&] { return keychain::detail::generate_data_key_request(kek, context, context_len); });
}

KC_API int kc_batch_run(kc_client* c, kc_batch* b) {
    return keychain::detail::guarded(c, [&] {
        if (b == nullptr) throw ClientError(KC_ERR_ARGUMENT, "batch is NULL");
        std::vector<Call*> calls;
        calls.reserve(b->items.size());
        for (auto& item : b->items) {
            item.result = WipingBuffer();
            item.wrapped = WipingBuffer();
            item.ran = true;
            calls.push_back(&item.call);
        }
        const int rc = keychain::detail::run_calls(*c, calls);
        for (auto& item : b->items) {
            if (item.call.code == KC_OK) {
                try {
                    extract(item);
                } catch (const ClientError& e) {
                    item.call.code = e.code();
                    item.call.message = e.what();
                } catch (const keychaind::wire::DecodeError& e) {
                    item.call.code = KC_ERR_PROTOCOL;
                    item.call.message = std::string("keychaind sent a malformed reply: ") + e.what();
                }
            }
            item.call.reply = WipingBuffer();
        }
        if (rc != KC_OK) throw ClientError(rc, c->last_error);
    });
}

KC_API int kc_batch_result(const kc_batch* b, size_t i, kc_buffer* out) { return result(b, i, out, false); }

KC_API int kc_batch_result_wrapped(const kc_batch* b, size_t i, kc_buffer* out) { return result(b, i, out, true); }

KC_API const char* kc_batch_message(const kc_batch* b, size_t i) {
    if (b == nullptr || i >= b->items.size()) return "";
    return b->items[i].call.message.c_str();
}

}  // extern "C"
