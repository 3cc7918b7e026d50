// The attribute templates of the three object kinds, filled from a KeyRecord.
#include "token_objects.h"

#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>

#include <set>

#include "mechanisms.h"

namespace keychaind::pkcs11 {
namespace {

std::vector<uint8_t> sha256(std::span<const uint8_t> data) {
    std::vector<uint8_t> d(32);
    mbedtls_sha256_ret(data.data(), data.size(), d.data(), 0);
    return d;
}

std::string hex(std::span<const uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    for (uint8_t b : bytes) {
        s += kDigits[b >> 4];
        s += kDigits[b & 15];
    }
    return s;
}

// What every object of this token shares: token objects, public, read-only.
void add_storage(AttributeSet& a, CK_OBJECT_CLASS cls, const std::string& label) {
    a.set_ulong(CKA_CLASS, cls);
    a.set_bool(CKA_TOKEN, true);
    a.set_bool(CKA_PRIVATE, false);  // visible without login: the daemon's policy decides
    a.set_bool(CKA_MODIFIABLE, false);
    a.set_bool(CKA_COPYABLE, false);
    a.set_bool(CKA_DESTROYABLE, false);
    a.set_text(CKA_LABEL, label);
}

void add_key_common(AttributeSet& a, const KeyRecord& k) {
    a.set_ulong(CKA_KEY_TYPE, k.public_key.family == KeyFamily::Rsa ? CKK_RSA : CKK_EC);
    a.set_bytes(CKA_ID, k.id);
    a.set_bytes(CKA_START_DATE, {});
    a.set_bytes(CKA_END_DATE, {});
    a.set_bool(CKA_DERIVE, false);
    a.set_bool(CKA_LOCAL, false);
    a.set_ulong(CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
    a.set_bytes(CKA_SUBJECT, k.certificate_fields.empty() ? std::vector<uint8_t>{}
                                                          : k.certificate_fields[0].subject);
    a.set_bytes(CKA_PUBLIC_KEY_INFO, k.spki);
}

bool can_sign(const KeyRecord& k) { return (k.listed.usages & KC_USAGE_SIGN) != 0; }
bool can_decrypt(const KeyRecord& k) {
    return k.public_key.family == KeyFamily::Rsa && (k.listed.usages & KC_USAGE_DECRYPT) != 0;
}

std::shared_ptr<const TokenObject> private_key_object(const KeyRecord& k) {
    auto o = std::make_shared<TokenObject>();
    o->object_class = CKO_PRIVATE_KEY;
    o->key_id_hex = k.listed.id_hex;
    const PublicKeyParts& pub = k.public_key;
    o->private_key =
        PrivateKeyRef{k.listed.id_hex,    pub.family,  pub.bits,      pub.modulus.size(),
                      pub.ec_order_bytes, can_sign(k), can_decrypt(k)};
    AttributeSet& a = o->attributes;
    add_storage(a, CKO_PRIVATE_KEY, k.listed.label);
    add_key_common(a, k);
    a.set_bool(CKA_SENSITIVE, true);
    a.set_bool(CKA_ALWAYS_SENSITIVE, true);
    a.set_bool(CKA_EXTRACTABLE, false);
    a.set_bool(CKA_NEVER_EXTRACTABLE, true);
    a.set_bool(CKA_SIGN, can_sign(k));
    a.set_bool(CKA_DECRYPT, can_decrypt(k));
    a.set_bool(CKA_SIGN_RECOVER, false);
    a.set_bool(CKA_UNWRAP, false);
    a.set_bool(CKA_WRAP_WITH_TRUSTED, false);
    a.set_bool(CKA_ALWAYS_AUTHENTICATE, false);
    std::vector<CK_ULONG> allowed;
    for (const Mechanism& m : all_mechanisms()) {
        if (m.family != pub.family) continue;
        if (m.scheme == Scheme::RsaOaep ? can_decrypt(k) : can_sign(k)) allowed.push_back(m.type);
    }
    a.set_ulongs(CKA_ALLOWED_MECHANISMS, allowed);
    if (pub.family == KeyFamily::Rsa) {
        // The public half of an RSA private key is not secret; OpenSSL's engine reads it here.
        a.set_bytes(CKA_MODULUS, pub.modulus);
        a.set_bytes(CKA_PUBLIC_EXPONENT, pub.public_exponent);
        for (CK_ATTRIBUTE_TYPE t : {CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
                                    CKA_EXPONENT_2, CKA_COEFFICIENT})
            a.set_sensitive(t);
    } else {
        a.set_bytes(CKA_EC_PARAMS, pub.ec_params);
        a.set_sensitive(CKA_VALUE);
    }
    return o;
}

std::shared_ptr<const TokenObject> public_key_object(const KeyRecord& k) {
    auto o = std::make_shared<TokenObject>();
    o->object_class = CKO_PUBLIC_KEY;
    o->key_id_hex = k.listed.id_hex;
    AttributeSet& a = o->attributes;
    add_storage(a, CKO_PUBLIC_KEY, k.listed.label);
    add_key_common(a, k);
    // The token does not verify or encrypt: the caller does that with the public key itself.
    a.set_bool(CKA_ENCRYPT, false);
    a.set_bool(CKA_VERIFY, false);
    a.set_bool(CKA_VERIFY_RECOVER, false);
    a.set_bool(CKA_WRAP, false);
    a.set_bool(CKA_TRUSTED, false);
    const PublicKeyParts& pub = k.public_key;
    if (pub.family == KeyFamily::Rsa) {
        a.set_bytes(CKA_MODULUS, pub.modulus);
        a.set_ulong(CKA_MODULUS_BITS, pub.bits);
        a.set_bytes(CKA_PUBLIC_EXPONENT, pub.public_exponent);
    } else {
        a.set_bytes(CKA_EC_PARAMS, pub.ec_params);
        a.set_bytes(CKA_EC_POINT, pub.ec_point);
    }
    return o;
}

std::shared_ptr<const TokenObject> certificate_object(const KeyRecord& k, size_t index) {
    const std::vector<uint8_t>& der = k.certificates[index];
    const CertificateFields& f = k.certificate_fields[index];
    auto o = std::make_shared<TokenObject>();
    o->object_class = CKO_CERTIFICATE;
    o->key_id_hex = k.listed.id_hex;
    AttributeSet& a = o->attributes;
    const bool leaf = index == 0;
    add_storage(a, CKO_CERTIFICATE,
                leaf ? k.listed.label : k.listed.label + " chain " + std::to_string(index));
    a.set_ulong(CKA_CERTIFICATE_TYPE, CKC_X_509);
    a.set_bool(CKA_TRUSTED, false);
    // 1 = token user (its key is on this token), 2 = authority.
    a.set_ulong(CKA_CERTIFICATE_CATEGORY, leaf ? 1 : 2);
    uint8_t sha1[20];
    mbedtls_sha1_ret(der.data(), der.size(), sha1);
    a.set_bytes(CKA_CHECK_VALUE, {sha1, 3});
    a.set_bytes(CKA_START_DATE, {});
    a.set_bytes(CKA_END_DATE, {});
    a.set_bytes(CKA_SUBJECT, f.subject);
    a.set_bytes(CKA_ID, leaf ? k.id : sha256(f.spki));
    a.set_bytes(CKA_ISSUER, f.issuer);
    a.set_bytes(CKA_SERIAL_NUMBER, f.serial_number);
    a.set_bytes(CKA_VALUE, der);
    a.set_bytes(CKA_URL, {});
    a.set_ulong(CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
    return o;
}

}  // namespace

std::vector<NamedObject> build_token_objects(const KeyRecords& records) {
    std::vector<NamedObject> out;
    std::set<std::string> certificate_names;
    for (const auto& k : records) {
        out.push_back({"private:" + k->listed.id_hex, private_key_object(*k)});
        out.push_back({"public:" + k->listed.id_hex, public_key_object(*k)});
        for (size_t i = 0; i < k->certificates.size(); ++i) {
            std::string name = "certificate:" + hex(sha256(k->certificates[i]));
            if (!certificate_names.insert(name).second) continue;
            out.push_back({std::move(name), certificate_object(*k, i)});
        }
    }
    return out;
}

}  // namespace keychaind::pkcs11
