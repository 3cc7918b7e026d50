// Text for trace lines and messages: names from peers, keys and files may be hostile.
#include "policy/rule.h"

namespace keychaind::policy {

std::string quoted(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    static constexpr size_t kMaxShown = 200;
    std::string out = "\"";
    for (size_t i = 0; i < text.size(); ++i) {
        if (i == kMaxShown) {
            out += "...";
            break;
        }
        const auto u = static_cast<unsigned char>(text[i]);
        if (u == '"' || u == '\\') {
            out += '\\';
            out += text[i];
        } else if (u < 0x20 || u >= 0x7f) {
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 15];
        } else {
            out += text[i];
        }
    }
    out += '"';
    return out;
}

std::string shown(std::string_view text) {
    if (text.empty() || text.size() > 200) return quoted(text);
    for (const char ch : text) {
        const auto u = static_cast<unsigned char>(ch);
        if (u <= 0x20 || u >= 0x7f || u == '"' || u == '\\' || u == ',') return quoted(text);
    }
    return std::string(text);
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

}  // namespace keychaind::policy
