// Key selectors: id, label glob, source kind, device (serial, filesystem UUID), token URI.
#include <fnmatch.h>

#include <algorithm>
#include <array>

#include "policy/rule.h"

namespace keychaind::policy {
namespace {

constexpr std::array<std::string_view, 5> kSourceKinds = {"file", "identity", "provided", "device",
                                                          "token"};

std::string_view kind_of(std::string_view source) { return source.substr(0, source.find(':')); }

std::string_view location_of(std::string_view source) {
    const size_t colon = source.find(':');
    return colon == std::string_view::npos ? std::string_view() : source.substr(colon + 1);
}

// "device:<serial or devnode>/<fs uuid>/<file>", read from the right: the serial may hold '/'
// (a devnode does), the UUID and the file name never do.
struct DeviceLocation {
    std::string_view serial, fs_uuid;
};
std::optional<DeviceLocation> device_location(std::string_view source) {
    if (kind_of(source) != "device") return std::nullopt;
    const std::string_view loc = location_of(source);
    const size_t file_slash = loc.rfind('/');
    if (file_slash == std::string_view::npos || file_slash == 0) return std::nullopt;
    const size_t uuid_slash = loc.rfind('/', file_slash - 1);
    if (uuid_slash == std::string_view::npos || uuid_slash == 0) return std::nullopt;
    return DeviceLocation{loc.substr(0, uuid_slash),
                          loc.substr(uuid_slash + 1, file_slash - uuid_slash - 1)};
}

bool device_selected(const DeviceSelector& d, std::string_view source) {
    const auto loc = device_location(source);
    if (!loc) return false;
    if (d.serial && loc->serial != *d.serial) return false;
    if (d.fs_uuid && !equal_ignoring_case(loc->fs_uuid, *d.fs_uuid)) return false;
    return true;
}

// The key's own URI is parsed here, at each decision that reaches a token selector: it is the
// only matcher that allocates without a trace.
bool token_selected(P11KitUri* rule, const std::string& source) {
    if (kind_of(source) != "token") return false;
    const UriPtr key(p11_kit_uri_new());
    if (!key) return false;
    const char* location = source.c_str() + std::string_view("token:").size();
    if (p11_kit_uri_parse(location, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, key.get()) != P11_KIT_URI_OK)
        return false;
    if (p11_kit_uri_match_token_info(rule, p11_kit_uri_get_token_info(key.get())) == 0)
        return false;
    // p11_kit_uri_match_attributes passes an attribute the key lacks: the rule's attributes are
    // required here to be present in the key's URI first.
    std::array<CK_ATTRIBUTE, 3> attrs{};
    CK_ULONG n = 0;
    for (const CK_ATTRIBUTE_TYPE type : {CKA_CLASS, CKA_LABEL, CKA_ID}) {
        if (p11_kit_uri_get_attribute(rule, type) == nullptr) continue;
        const CK_ATTRIBUTE* a = p11_kit_uri_get_attribute(key.get(), type);
        if (a == nullptr) return false;
        attrs[n++] = *a;
    }
    return p11_kit_uri_match_attributes(rule, attrs.data(), n) != 0;
}

// The first of the key's sources satisfying `pred`, or nullptr.
template <typename Pred>
const std::string* source_where(const KeyFacts& key, Pred pred) {
    const auto it = std::find_if(key.sources.begin(), key.sources.end(), pred);
    return it == key.sources.end() ? nullptr : &*it;
}

void add_part(std::string* why, const std::string& part) {
    if (why == nullptr) return;
    *why += why->empty() ? "key " : " and ";
    *why += part;
}

bool selector_matches(const KeySelector& s, const KeyFacts& key, std::string* why) {
    if (why != nullptr) why->clear();
    if (s.id) {
        if (!equal_ignoring_case(key.id, *s.id)) return false;
        add_part(why, "id " + key.id);
    }
    if (s.label_glob) {
        // fnmatch stops at a NUL: a label holding one could pass for its prefix.
        if (key.label.find('\0') != std::string::npos) return false;
        if (fnmatch(s.label_glob->c_str(), key.label.c_str(), 0) != 0) return false;
        if (why != nullptr)
            add_part(why, "label " + quoted(key.label) + " matches label " + quoted(*s.label_glob));
    }
    if (s.source) {
        const std::string_view kind = source_kind_name(*s.source);
        const std::string* hit =
            source_where(key, [&](const std::string& src) { return kind_of(src) == kind; });
        if (hit == nullptr) return false;
        if (why != nullptr)
            add_part(why, "source " + quoted(*hit) + " is of kind " + std::string(kind));
    }
    if (s.device) {
        const std::string* hit = source_where(
            key, [&](const std::string& src) { return device_selected(*s.device, src); });
        if (hit == nullptr) return false;
        if (why != nullptr) add_part(why, "source " + quoted(*hit) + " is on the device");
    }
    if (s.token) {
        const std::string* hit = source_where(
            key, [&](const std::string& src) { return token_selected(s.token.get(), src); });
        if (hit == nullptr) return false;
        if (why != nullptr)
            add_part(why, "source " + quoted(*hit) + " matches token " + quoted(s.token_text));
    }
    return true;
}

// `label "web-*" and source kind file`
std::string describe(const KeySelector& s) {
    std::string out;
    const auto part = [&](const std::string& p) { out += (out.empty() ? "" : " and ") + p; };
    if (s.id) part("id " + *s.id);
    if (s.label_glob) part("label " + quoted(*s.label_glob));
    if (s.source) part("source kind " + std::string(source_kind_name(*s.source)));
    if (s.device) {
        std::string d = "device";
        if (s.device->serial) d += " serial " + quoted(*s.device->serial);
        if (s.device->fs_uuid) d += " fs_uuid " + quoted(*s.device->fs_uuid);
        part(d);
    }
    if (s.token) part("token " + quoted(s.token_text));
    return out;
}

}  // namespace

std::optional<SourceKind> source_kind_from_name(std::string_view name) {
    for (size_t i = 0; i < kSourceKinds.size(); ++i)
        if (kSourceKinds[i] == name) return static_cast<SourceKind>(i);
    return std::nullopt;
}

std::string_view source_kind_name(SourceKind kind) {
    return kSourceKinds.at(static_cast<size_t>(kind));
}

bool key_matches(const KeyMatch& m, const KeyFacts& key, std::string* why) {
    if (m.any) {
        if (why != nullptr) *why = "any key";
        return true;
    }
    for (const auto& s : m.selectors)
        if (selector_matches(s, key, why)) return true;
    if (why != nullptr) {
        *why = "key id " + (key.id.empty() ? std::string("(none)") : shown(key.id)) + " label " +
               quoted(key.label) + " matches none of: ";
        for (size_t i = 0; i < m.selectors.size(); ++i)
            *why += (i == 0 ? "" : "; ") + describe(m.selectors[i]);
    }
    return false;
}

std::shared_ptr<P11KitUri> parse_token_selector(const std::string& text, std::string& error) {
    if (text.rfind("pkcs11:", 0) != 0) {
        error = quoted(text) + " is not a pkcs11: URI";
        return nullptr;
    }
    if (text.find('?') != std::string::npos) {
        error = quoted(text) +
                " has query attributes (after '?'); a token selector has token and object "
                "attributes only";
        return nullptr;
    }
    std::shared_ptr<P11KitUri> uri(p11_kit_uri_new(), P11KitUriFree());
    if (!uri) throw std::bad_alloc();
    const int rc = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_OBJECT_ON_TOKEN, uri.get());
    if (rc != P11_KIT_URI_OK) {
        error = quoted(text) + " is not a valid pkcs11: URI: " + p11_kit_uri_message(rc);
        return nullptr;
    }
    if (p11_kit_uri_any_unrecognized(uri.get()) != 0) {
        error = quoted(text) +
                " has attributes keychaind does not match on; use token, manufacturer, serial, "
                "model, object, id and type";
        return nullptr;
    }
    return uri;
}

}  // namespace keychaind::policy
