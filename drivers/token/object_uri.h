// Pkcs11Uri: a parsed RFC 7512 URI (p11-kit) that selects tokens and objects; and the URIs
// keychaind writes to name a token's key in its sources.
#pragma once

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace keychaind::token {

class Pkcs11Uri {
public:
    // Token attributes only (token, manufacturer, serial, model).
    static Pkcs11Uri for_token(const std::string& text);
    // Object attributes (object, id, type), optionally with token attributes.
    static Pkcs11Uri for_object(const std::string& text);

    const std::string& text() const { return text_; }
    bool matches_token(const CK_TOKEN_INFO& token) const;
    // Every attribute the URI names must equal the object's; the token part must match `token`.
    bool matches_object(const CK_TOKEN_INFO& token, CK_OBJECT_CLASS cls, std::string_view label,
                        std::span<const uint8_t> id) const;

private:
    // Throws TokenFault when `text` does not parse, has attributes of another kind, or a PIN.
    Pkcs11Uri(const std::string& text, P11KitUriType type);
    std::string text_;
    std::shared_ptr<P11KitUri> uri_;  // read-only after parsing: shared between threads
};

// "pkcs11:token=<label>;serial=<serial>;object=<label>;id=<%xx…>;type=private|secret-key|public|cert"
// with every character outside RFC 3986's unreserved set percent-encoded.
std::string object_uri(std::string_view token_label, std::string_view token_serial,
                       std::string_view object_label, std::span<const uint8_t> id, CK_OBJECT_CLASS cls);

}  // namespace keychaind::token
