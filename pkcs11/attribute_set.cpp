// AttributeSet: storing attributes as bytes, reading them out, matching templates.
#include "attribute_set.h"

#include <cstring>

namespace keychaind::pkcs11 {

std::string template_problem(const CK_ATTRIBUTE* tmpl, CK_ULONG count, bool search) {
    if (count > kMaxTemplateAttributes) return "a template of " + std::to_string(count) + " attributes";
    if (count > 0 && tmpl == nullptr) return "pTemplate is NULL";
    if (search)
        for (CK_ULONG i = 0; i < count; ++i)
            if (tmpl[i].pValue == nullptr && tmpl[i].ulValueLen != 0)
                return "template entry " + std::to_string(i) + " has a length but no value";
    return {};
}

void AttributeSet::put(CK_ATTRIBUTE_TYPE type, std::vector<uint8_t> value, bool sensitive) {
    for (Entry& e : entries_) {
        if (e.type == type) {
            e.value = std::move(value);
            e.sensitive = sensitive;
            return;
        }
    }
    entries_.push_back(Entry{type, std::move(value), sensitive});
}

void AttributeSet::set_bool(CK_ATTRIBUTE_TYPE type, bool v) {
    put(type, {static_cast<uint8_t>(v ? CK_TRUE : CK_FALSE)}, false);
}

void AttributeSet::set_ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG v) { set_ulongs(type, {&v, 1}); }

void AttributeSet::set_ulongs(CK_ATTRIBUTE_TYPE type, std::span<const CK_ULONG> v) {
    std::vector<uint8_t> bytes(v.size_bytes());
    if (!bytes.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
    put(type, std::move(bytes), false);
}

void AttributeSet::set_bytes(CK_ATTRIBUTE_TYPE type, std::span<const uint8_t> v) {
    put(type, {v.begin(), v.end()}, false);
}

void AttributeSet::set_text(CK_ATTRIBUTE_TYPE type, std::string_view v) {
    put(type, {v.begin(), v.end()}, false);
}

void AttributeSet::set_sensitive(CK_ATTRIBUTE_TYPE type) { put(type, {}, true); }

const AttributeSet::Entry* AttributeSet::find(CK_ATTRIBUTE_TYPE type) const {
    for (const Entry& e : entries_)
        if (e.type == type) return &e;
    return nullptr;
}

const std::vector<uint8_t>* AttributeSet::value_of(CK_ATTRIBUTE_TYPE type) const {
    const Entry* e = find(type);
    return e != nullptr && !e->sensitive ? &e->value : nullptr;
}

CK_RV AttributeSet::read_into(CK_ATTRIBUTE* tmpl, CK_ULONG count) const {
    CK_RV rv = CKR_OK;
    for (CK_ULONG i = 0; i < count; ++i) {
        CK_ATTRIBUTE& a = tmpl[i];
        const Entry* e = find(a.type);
        if (e == nullptr) {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (e->sensitive) {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_SENSITIVE;
        } else if (a.pValue == nullptr) {
            a.ulValueLen = e->value.size();
        } else if (a.ulValueLen >= e->value.size()) {
            if (!e->value.empty()) std::memcpy(a.pValue, e->value.data(), e->value.size());
            a.ulValueLen = e->value.size();
        } else {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_BUFFER_TOO_SMALL;
        }
    }
    return rv;
}

bool AttributeSet::matches(const CK_ATTRIBUTE* tmpl, CK_ULONG count) const {
    for (CK_ULONG i = 0; i < count; ++i) {
        const CK_ATTRIBUTE& a = tmpl[i];
        const Entry* e = find(a.type);
        if (e == nullptr || e->sensitive || e->value.size() != a.ulValueLen) return false;
        if (a.ulValueLen != 0 && std::memcmp(e->value.data(), a.pValue, a.ulValueLen) != 0)
            return false;
    }
    return true;
}

}  // namespace keychaind::pkcs11
