// Fuzz target: the PKCS#11 module's objects and templates (pkcs11/attribute_set.cpp,
// object_table.cpp, token_objects.cpp): hostile templates for C_FindObjectsInit and
// C_GetAttributeValue (lengths, NULL values with lengths, CK_UNAVAILABLE_INFORMATION, unknown
// types), and keys whose SubjectPublicKeyInfo and certificates come from the input, as a
// compromised daemon could send them.
#include <cstdlib>
#include <vector>

#include "attribute_set.h"
#include "fuzz_input.h"
#include "object_table.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::pkcs11;

namespace {

// A key as the daemon lists it, its record made as the module makes it (nullptr when refused).
std::shared_ptr<const KeyRecord> record(uint8_t kind, std::string id_hex, std::span<const uint8_t> spki,
                                        std::vector<std::vector<uint8_t>> certs) {
    const ListedKey listed{std::move(id_hex), "fuzz", kind, 0, KC_USAGE_SIGN | KC_USAGE_DECRYPT, "file:/fuzz"};
    return make_key_record(listed, PublicKeyAnswer{{spki.begin(), spki.end()}, std::move(certs)});
}

const KeyRecords& preloaded() {
    static const KeyRecords r = [] {
        const auto ec = test::make_identity(KeyKind::EcP256, 0, "ec");
        const auto rsa = test::make_identity(KeyKind::Rsa, 2048, "rsa");
        return KeyRecords{
            record(KC_KIND_EC_P256, std::string(64, 'e'), ec.spki_der, {ec.cert_der, rsa.cert_der}),
            record(KC_KIND_RSA, std::string(64, 'a'), rsa.spki_der, {rsa.cert_der}),
        };
    }();
    return r;
}

// Attribute types the objects have, so most picks hit one; others come raw from the input.
constexpr CK_ATTRIBUTE_TYPE kTypes[] = {
    CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_ID, CKA_KEY_TYPE, CKA_SIGN, CKA_DECRYPT,
    CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS, CKA_EC_PARAMS, CKA_EC_POINT, CKA_VALUE,
    CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_CERTIFICATE_TYPE, CKA_PRIVATE_EXPONENT,
    CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_AUTHENTICATE, CKA_ALLOWED_MECHANISMS,
    CKA_PUBLIC_KEY_INFO, CKA_CHECK_VALUE, CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
};
constexpr size_t kTypeCount = sizeof kTypes / sizeof kTypes[0];

// A caller's template: the entries and the buffers their pValue point into.
struct Template {
    std::vector<CK_ATTRIBUTE> attrs;
    std::vector<std::vector<uint8_t>> buffers;
    CK_ULONG count = 0;  // what the caller claims; may differ from attrs.size()
    bool null_array = false;
};

Template read_template(fuzz::FuzzInput& in) {
    Template t;
    const uint8_t n = in.u8();
    t.buffers.resize(n % 16);
    for (size_t i = 0; i < n % 16; ++i) {
        const uint8_t pick = in.u8();
        CK_ATTRIBUTE a{pick < kTypeCount ? kTypes[pick] : CK_ATTRIBUTE_TYPE{in.u32()}, nullptr, 0};
        switch (in.u8() % 4) {
            case 0: break;                                                // NULL, length 0
            case 1: a.ulValueLen = in.u16(); break;                       // NULL with a length
            case 2: a.ulValueLen = CK_UNAVAILABLE_INFORMATION; break;     // NULL, "unavailable"
            default: {                                                    // a real buffer
                const auto bytes = in.chunk();
                t.buffers[i].assign(bytes.begin(), bytes.end());
                // A non-NULL pointer even for length 0, as a caller's empty array would be.
                t.buffers[i].reserve(1);
                a.pValue = t.buffers[i].data();
                a.ulValueLen = t.buffers[i].size();
                break;
            }
        }
        t.attrs.push_back(a);
    }
    t.count = t.attrs.size();
    // Sometimes the count lies: a huge one with no array, or one past the bound.
    switch (in.u8()) {
        case 0xFE: t.count = kMaxTemplateAttributes + 1; break;
        case 0xFF: t.null_array = true; t.count = in.u8(); break;
        default: break;
    }
    return t;
}

CK_ATTRIBUTE* array_of(Template& t) { return t.null_array ? nullptr : t.attrs.data(); }

void find_objects(const ObjectTable& table, Template t) {
    if (!template_problem(array_of(t), t.count, true).empty()) return;  // CKR_ARGUMENTS_BAD
    for (CK_OBJECT_HANDLE h : table.match(array_of(t), t.count))
        if (table.find(h) == nullptr) std::abort();
}

void get_attribute_value(const ObjectTable& table, CK_OBJECT_HANDLE handle, Template t) {
    if (!template_problem(array_of(t), t.count, false).empty()) return;
    const auto object = table.find(handle);
    if (object == nullptr) return;  // CKR_OBJECT_HANDLE_INVALID
    std::vector<CK_ULONG> offered;
    for (const auto& a : t.attrs) offered.push_back(a.ulValueLen);
    const CK_RV rv = object->attributes.read_into(array_of(t), t.count);
    // Every answered length fits the buffer offered, or says the value is unavailable.
    for (size_t i = 0; i < t.attrs.size(); ++i) {
        const CK_ATTRIBUTE& a = t.attrs[i];
        if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) continue;
        if (a.pValue != nullptr && a.ulValueLen > offered[i]) std::abort();
    }
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
        rv != CKR_BUFFER_TOO_SMALL)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)preloaded();
    return 0;
}

// Input: a list of steps. 0: C_FindObjectsInit's match; 1: C_GetAttributeValue on a handle;
// 2: a key whose SPKI and certificate come from the input joins the table.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::FuzzInput in(data, size);
    KeyRecords records = preloaded();
    ObjectTable table;
    table.replace(records, build_token_objects(records));
    for (int step = 0; step < 32 && !in.empty(); ++step) {
        switch (in.u8() % 3) {
            case 0: find_objects(table, read_template(in)); break;
            case 1: {
                const CK_OBJECT_HANDLE handle = in.u8();
                get_attribute_value(table, handle, read_template(in));
                break;
            }
            default: {
                const uint8_t kind = in.u8() % 2 == 0 ? KC_KIND_RSA : KC_KIND_EC_P256;
                const auto spki = in.chunk();
                const auto cert = in.chunk();
                auto r = record(kind, std::string(64, static_cast<char>('0' + step % 10)), spki,
                                {{cert.begin(), cert.end()}});
                if (r == nullptr) break;  // the module leaves such a key out
                records.push_back(std::move(r));
                table.replace(records, build_token_objects(records));
                break;
            }
        }
    }
    return 0;
}
