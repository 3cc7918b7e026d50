// Parsing of key selectors.
#include "key_selector.h"

#include <string_view>

#include "client_error.h"
#include "keychain/client.h"

namespace keychain::detail {

namespace {
constexpr std::string_view kLabelPrefix = "label:";

int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

bool decode_key_id(std::string_view text, std::vector<uint8_t>& out) {
    if (text.size() != 32 && text.size() != 64) return false;
    std::vector<uint8_t> bytes(text.size() / 2);
    for (size_t i = 0; i < bytes.size(); ++i) {
        const int hi = hex_value(text[2 * i]);
        const int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    out = std::move(bytes);
    return true;
}
}  // namespace

KeySelector parse_key_selector(const char* text) {
    if (text == nullptr) throw ClientError(KC_ERR_ARGUMENT, "no key given");
    std::string_view t(text);
    KeySelector s;
    if (t.substr(0, kLabelPrefix.size()) == kLabelPrefix) {
        t.remove_prefix(kLabelPrefix.size());
    } else if (decode_key_id(t, s.id)) {
        return s;
    }
    if (t.empty()) throw ClientError(KC_ERR_ARGUMENT, "empty key label");
    if (!keychaind::wire::is_utf8(t)) throw ClientError(KC_ERR_ARGUMENT, "key label is not UTF-8");
    s.label = std::string(t);
    return s;
}

void add_key_selector(keychaind::wire::MessageBuilder& b, const KeySelector& s, keychaind::wire::Tag id_tag,
                      keychaind::wire::Tag label_tag) {
    if (!s.id.empty())
        b.bytes(id_tag, s.id);
    else
        b.str(label_tag, s.label);
}

}  // namespace keychain::detail
