// KeySelector: the `key` argument of the C API (key id in hex, `label:NAME`, or a bare label).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/message.h"

namespace keychain::detail {

struct KeySelector {
    std::vector<uint8_t> id;  // 16 or 32 bytes, or empty when the key is chosen by label
    std::string label;
};

// 32 or 64 hex digits = a key id; "label:NAME" = NAME; anything else = a label. Throws
// ClientError(KC_ERR_ARGUMENT) for NULL, an empty label or text that is not UTF-8.
KeySelector parse_key_selector(const char* text);

// Adds KEY_ID or LABEL (or the given tags, e.g. TARGET_KEY_ID/TARGET_LABEL for REWRAP).
void add_key_selector(keychaind::wire::MessageBuilder& b, const KeySelector& s,
                      keychaind::wire::Tag id_tag = keychaind::wire::Tag::KeyId,
                      keychaind::wire::Tag label_tag = keychaind::wire::Tag::Label);

}  // namespace keychain::detail
