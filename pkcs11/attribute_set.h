// AttributeSet: one object's attributes, and PKCS#11's rules for reading and matching them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cryptoki.h"

namespace keychaind::pkcs11 {

// Templates longer than this are refused (CKR_ARGUMENTS_BAD): no object has more attributes,
// and the count bounds how far the module reads the caller's array.
inline constexpr CK_ULONG kMaxTemplateAttributes = 1024;

// What is wrong with a caller's template before any of it is read (C_FindObjectsInit with
// `search`, C_GetAttributeValue without): too many entries, a NULL array, or (search only) a NULL
// value with a length. Empty when nothing is; the caller answers CKR_ARGUMENTS_BAD otherwise.
std::string template_problem(const CK_ATTRIBUTE* tmpl, CK_ULONG count, bool search);

class AttributeSet {
  public:
    void set_bool(CK_ATTRIBUTE_TYPE type, bool v);
    void set_ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG v);
    void set_bytes(CK_ATTRIBUTE_TYPE type, std::span<const uint8_t> v);
    void set_text(CK_ATTRIBUTE_TYPE type, std::string_view v);
    void set_ulongs(CK_ATTRIBUTE_TYPE type, std::span<const CK_ULONG> v);
    // An attribute the object has but never reveals (a private key's secret parts).
    void set_sensitive(CK_ATTRIBUTE_TYPE type);

    // C_GetAttributeValue (v2.40 §5.7): every entry of the template is answered; the return value
    // is CKR_OK or one of the errors met (ATTRIBUTE_SENSITIVE, ATTRIBUTE_TYPE_INVALID,
    // BUFFER_TOO_SMALL), with ulValueLen = CK_UNAVAILABLE_INFORMATION on those entries.
    CK_RV read_into(CK_ATTRIBUTE* tmpl, CK_ULONG count) const;
    // C_FindObjectsInit: every template entry is present with exactly these bytes. A sensitive
    // attribute never matches.
    bool matches(const CK_ATTRIBUTE* tmpl, CK_ULONG count) const;

    const std::vector<uint8_t>* value_of(CK_ATTRIBUTE_TYPE type) const;

  private:
    struct Entry {
        CK_ATTRIBUTE_TYPE type;
        std::vector<uint8_t> value;
        bool sensitive;
    };
    const Entry* find(CK_ATTRIBUTE_TYPE type) const;
    void put(CK_ATTRIBUTE_TYPE type, std::vector<uint8_t> value, bool sensitive);

    std::vector<Entry> entries_;
};

}  // namespace keychaind::pkcs11
