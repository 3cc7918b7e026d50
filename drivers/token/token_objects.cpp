// Reading a token's objects: bounded attribute reads, public halves, chains, AES key ids.
#include "token/token_objects.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "core/log.h"
#include "protocol/message.h"
#include "token/pkcs11_encoding.h"
#include "token/token_keys.h"

namespace keychaind::token {
namespace {

constexpr std::string_view kKeyIdPrefix = "keychaind key-id v1";
constexpr std::string_view kFallbackIdPrefix = "keychaind token-key v1";
constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxLabelBytes = 1024;
constexpr size_t kMaxEcParamsBytes = 256;
constexpr size_t kMaxEcPointBytes = 512;
constexpr size_t kMaxExponentBytes = 16;

using Bytes = std::vector<uint8_t>;

// One attribute's value, at most `max` bytes; nullopt when the object has no such attribute or
// will not show it. Every length the token gives is checked before and after.
std::optional<Bytes> read_attribute(const CallContext& c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
                                    size_t max, const char* name) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    CK_RV rv = c.fn->C_GetAttributeValue(c.session, h, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return std::nullopt;
    check_rv(rv, "C_GetAttributeValue");
    if (a.ulValueLen > max)
        throw TokenFault(std::string(name) + " is " + std::to_string(a.ulValueLen) + " bytes; at most " +
                         std::to_string(max) + " are read");
    Bytes v(a.ulValueLen);
    if (v.empty()) return v;
    a.pValue = v.data();
    const CK_ULONG room = a.ulValueLen;
    rv = c.fn->C_GetAttributeValue(c.session, h, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) return std::nullopt;
    check_rv(rv, "C_GetAttributeValue");
    if (a.ulValueLen > room)
        throw TokenFault("C_GetAttributeValue returned " + std::to_string(a.ulValueLen) + " bytes of " + name +
                         " into room for " + std::to_string(room));
    v.resize(a.ulValueLen);
    return v;
}

std::optional<CK_ULONG> read_ulong(const CallContext& c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, const char* name) {
    const auto v = read_attribute(c, h, type, sizeof(CK_ULONG), name);
    if (!v) return std::nullopt;
    if (v->size() != sizeof(CK_ULONG))
        throw TokenFault(std::string(name) + " is " + std::to_string(v->size()) + " bytes, not a CK_ULONG");
    CK_ULONG out = 0;
    std::memcpy(&out, v->data(), sizeof out);
    return out;
}

std::optional<bool> read_bool(const CallContext& c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, const char* name) {
    const auto v = read_attribute(c, h, type, sizeof(CK_BBOOL), name);
    if (!v) return std::nullopt;
    if (v->size() != sizeof(CK_BBOOL))
        throw TokenFault(std::string(name) + " is " + std::to_string(v->size()) + " bytes, not a CK_BBOOL");
    return (*v)[0] != CK_FALSE;
}

std::vector<CK_OBJECT_HANDLE> find_class(const CallContext& c, CK_OBJECT_CLASS cls) {
    CK_ATTRIBUTE tmpl{CKA_CLASS, &cls, sizeof cls};
    check_rv(c.fn->C_FindObjectsInit(c.session, &tmpl, 1), "C_FindObjectsInit");
    std::vector<CK_OBJECT_HANDLE> out;
    CK_OBJECT_HANDLE batch[64];
    CK_RV rv = CKR_OK;
    for (;;) {
        CK_ULONG n = 0;
        rv = c.fn->C_FindObjects(c.session, batch, 64, &n);
        if (rv != CKR_OK) break;
        if (n > 64) {
            c.fn->C_FindObjectsFinal(c.session);
            throw TokenFault("C_FindObjects returned " + std::to_string(n) + " handles for room for 64");
        }
        if (n == 0) break;
        out.insert(out.end(), batch, batch + n);
        if (out.size() > kMaxObjectsPerClass) {
            c.fn->C_FindObjectsFinal(c.session);
            throw TokenFault("the token holds more than " + std::to_string(kMaxObjectsPerClass) +
                             " objects of one class");
        }
    }
    c.fn->C_FindObjectsFinal(c.session);
    check_rv(rv, "C_FindObjects");
    return out;
}

// What is read of every object, whatever its class; the rest is read where it is needed.
struct ObjectInfo {
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ULONG type = 0;  // CKA_KEY_TYPE or CKA_CERTIFICATE_TYPE
    Bytes id;
    std::string label;
};

ObjectInfo read_info(const CallContext& c, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls) {
    ObjectInfo o;
    o.handle = h;
    o.cls = cls;
    const CK_ATTRIBUTE_TYPE type_attr = cls == CKO_CERTIFICATE ? CKA_CERTIFICATE_TYPE : CKA_KEY_TYPE;
    o.type = read_ulong(c, h, type_attr, cls == CKO_CERTIFICATE ? "CKA_CERTIFICATE_TYPE" : "CKA_KEY_TYPE")
                 .value_or(CK_UNAVAILABLE_INFORMATION);
    o.id = read_attribute(c, h, CKA_ID, kMaxIdBytes, "CKA_ID").value_or(Bytes{});
    const Bytes label = read_attribute(c, h, CKA_LABEL, kMaxLabelBytes, "CKA_LABEL").value_or(Bytes{});
    o.label.assign(label.begin(), label.end());
    return o;
}

// A key object that lacks what every finished key of its kind has: caught while another process
// was still writing it.
class Unfinished : public TokenFault {
public:
    using TokenFault::TokenFault;
};

std::string id_hex(const Bytes& id) { return id.empty() ? "none" : to_hex(id); }

// The keychain label of an object: its CKA_LABEL, unless that is not clean UTF-8 text (a token
// may hold any bytes there), then an escaped form of it.
std::string key_label(const std::string& label) {
    const bool clean = wire::is_utf8(label) &&
                       std::none_of(label.begin(), label.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20; });
    return clean ? label : log::escape(label);
}

class Reader {
public:
    Reader(const std::shared_ptr<TokenConnection>& conn, const std::vector<Pkcs11Uri>& selectors)
        : conn_(conn), selectors_(selectors), session_(conn->session()) {}

    TokenKeyScan read() {
        std::map<CK_OBJECT_CLASS, std::vector<ObjectInfo>> objects;
        for (const CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_SECRET_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE}) {
            const auto handles = session_.run<std::vector<CK_OBJECT_HANDLE>>(
                [cls](const CallContext& c) { return find_class(c, cls); });
            for (const CK_OBJECT_HANDLE h : handles) {
                try {
                    ObjectInfo o = session_.run<ObjectInfo>([h, cls](const CallContext& c) { return read_info(c, h, cls); });
                    if (cls != CKO_CERTIFICATE && cls != CKO_PUBLIC_KEY && o.type == CK_UNAVAILABLE_INFORMATION) {
                        skip(describe(o), "it has no CKA_KEY_TYPE", true);
                        continue;
                    }
                    if (cls == CKO_CERTIFICATE || cls == CKO_PUBLIC_KEY) note_if_half_written(o);
                    objects[cls].push_back(std::move(o));
                } catch (const KeychainError& e) {
                    if (vanished(e)) continue;
                    if (!object_alone(e)) throw;
                    skip("an object of class " + std::to_string(cls), e.what(), true);
                }
            }
        }
        publics_ = std::move(objects[CKO_PUBLIC_KEY]);
        certificates_ = std::move(objects[CKO_CERTIFICATE]);
        for (const CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_SECRET_KEY})
            for (const ObjectInfo& o : objects[cls]) {
                if (!selected(o)) {
                    guarded(o, [&] { note_if_half_written(o); });
                    continue;
                }
                guarded(o, [&] { cls == CKO_PRIVATE_KEY ? add_private_key(o) : add_aes_key(o); });
            }
        return std::move(out_);
    }

private:
    bool selected(const ObjectInfo& o) const {
        if (selectors_.empty()) return o.cls == CKO_PRIVATE_KEY || o.type == CKK_AES;
        for (const auto& s : selectors_)
            if (s.matches_object(conn_->info(), o.cls, o.label, o.id)) return true;
        return false;
    }

    std::string describe(const ObjectInfo& o) const {
        return std::string(o.cls == CKO_PRIVATE_KEY ? "private" : "secret") + " key \"" + log::escape(o.label) +
               "\" (id " + id_hex(o.id) + ")";
    }

    void skip(const std::string& what, const std::string& why, bool unfinished = false) {
        out_.problems.push_back(conn_->who() + ": " + what + " skipped: " + why);
        if (unfinished) ++out_.unfinished;
    }

    // An object deleted between the search and the read (a token being emptied): not a problem.
    static bool vanished(const KeychainError& e) {
        const auto* call = dynamic_cast<const TokenCallError*>(&e);
        return call != nullptr && rv_object_lost(call->rv());
    }

    // Whether a failure concerns one object only: not a token that went away or a call that never
    // returned (its session can take nothing more).
    bool object_alone(const KeychainError&) const {
        return !conn_->gone() && !conn_->closed() && session_.usable();
    }

    // A key that fails alone is skipped; a token that fails as a whole ends the scan.
    template <class F>
    void guarded(const ObjectInfo& o, F&& f) {
        try {
            f();
        } catch (const Unfinished& e) {
            skip(describe(o), e.what(), true);
        } catch (const KeychainError& e) {
            if (vanished(e)) return;
            if (!object_alone(e)) throw;
            skip(describe(o), e.what());
        } catch (const TokenFault& e) {
            skip(describe(o), e.what());
        }
    }

    // An object caught half-written: SoftHSM2 shows one with no CKA_ID, no label and none of the
    // value every finished one of its kind has. A public key or certificate so would leave its key
    // without a public half or its chain; a key so may be one a selector picks by label or id
    // once it is written. Either counts as unfinished, so the token is read again; nothing is
    // added or skipped for it here (a key selected as it is goes through add_private_key or
    // add_aes_key, which tell for themselves).
    void note_if_half_written(const ObjectInfo& o) {
        if (!o.id.empty() || !o.label.empty()) return;
        CK_ATTRIBUTE_TYPE attr = 0;
        size_t max = 0;
        const char* name = "";
        if (o.cls == CKO_CERTIFICATE) {
            if (o.type != CKC_X_509) return;
            attr = CKA_VALUE, max = kMaxCertificateBytes, name = "CKA_VALUE";
        } else if (o.cls == CKO_SECRET_KEY) {
            attr = CKA_VALUE_LEN, max = sizeof(CK_ULONG), name = "CKA_VALUE_LEN";
        } else if (o.type == CKK_RSA) {
            attr = CKA_MODULUS, max = kMaxModulusBytes, name = "CKA_MODULUS";
        } else if (o.type == CKK_EC) {
            attr = o.cls == CKO_PUBLIC_KEY ? CKA_EC_POINT : CKA_EC_PARAMS;
            max = o.cls == CKO_PUBLIC_KEY ? kMaxEcPointBytes : kMaxEcParamsBytes;
            name = o.cls == CKO_PUBLIC_KEY ? "CKA_EC_POINT" : "CKA_EC_PARAMS";
        } else {
            return;
        }
        const auto value = attrs<std::optional<Bytes>>(o.handle, [attr, max, name](const CallContext& c, CK_OBJECT_HANDLE h) {
            return read_attribute(c, h, attr, max, name);
        });
        // A length of 0 is no length.
        if (value && std::any_of(value->begin(), value->end(), [](uint8_t b) { return b != 0; })) return;
        const char* what = o.cls == CKO_CERTIFICATE ? "certificate"
                           : o.cls == CKO_PUBLIC_KEY ? "public key"
                           : o.cls == CKO_PRIVATE_KEY ? "private key"
                                                      : "secret key";
        out_.problems.push_back(conn_->who() + ": a " + what + " with no CKA_ID and no label has no " + name +
                                ": caught half-written");
        ++out_.unfinished;
    }

    template <class R>
    R attrs(CK_OBJECT_HANDLE h, std::function<R(const CallContext&, CK_OBJECT_HANDLE)> f) {
        return session_.run<R>([f, h](const CallContext& c) { return f(c, h); });
    }

    std::shared_ptr<TokenObject> object_of(const ObjectInfo& o) const {
        auto obj = std::make_shared<TokenObject>();
        obj->cls = o.cls;
        obj->key_type = o.type;
        obj->id = o.id;
        obj->label = o.label;
        obj->handle.store(o.handle);
        return obj;
    }

    std::optional<TokenPublicKey> public_half(const ObjectInfo& key) {
        struct Raw {
            std::optional<Bytes> info, modulus, exponent, ec_params;
        };
        const Raw own = attrs<Raw>(key.handle, [](const CallContext& c, CK_OBJECT_HANDLE h) {
            Raw r;
            r.info = read_attribute(c, h, CKA_PUBLIC_KEY_INFO, kMaxPublicKeyInfoBytes, "CKA_PUBLIC_KEY_INFO");
            r.modulus = read_attribute(c, h, CKA_MODULUS, kMaxModulusBytes, "CKA_MODULUS");
            r.exponent = read_attribute(c, h, CKA_PUBLIC_EXPONENT, kMaxExponentBytes, "CKA_PUBLIC_EXPONENT");
            r.ec_params = read_attribute(c, h, CKA_EC_PARAMS, kMaxEcParamsBytes, "CKA_EC_PARAMS");
            return r;
        });
        if (own.info && !own.info->empty()) return public_key_from_spki(*own.info);
        if (!key.id.empty()) {
            for (const ObjectInfo& p : publics_) {
                if (p.id != key.id || p.type != key.type) continue;
                if (key.type == CKK_RSA) {
                    const auto ne = attrs<std::pair<Bytes, Bytes>>(p.handle, [](const CallContext& c, CK_OBJECT_HANDLE h) {
                        return std::pair{read_attribute(c, h, CKA_MODULUS, kMaxModulusBytes, "CKA_MODULUS").value_or(Bytes{}),
                                         read_attribute(c, h, CKA_PUBLIC_EXPONENT, kMaxExponentBytes, "CKA_PUBLIC_EXPONENT")
                                             .value_or(Bytes{})};
                    });
                    if (ne.first.empty()) throw Unfinished("its public key (same CKA_ID) has no CKA_MODULUS");
                    return public_key_from_rsa(ne.first, ne.second);
                }
                const auto pe = attrs<std::pair<Bytes, Bytes>>(p.handle, [](const CallContext& c, CK_OBJECT_HANDLE h) {
                    return std::pair{read_attribute(c, h, CKA_EC_PARAMS, kMaxEcParamsBytes, "CKA_EC_PARAMS").value_or(Bytes{}),
                                     read_attribute(c, h, CKA_EC_POINT, kMaxEcPointBytes, "CKA_EC_POINT").value_or(Bytes{})};
                });
                if (pe.second.empty()) throw Unfinished("its public key (same CKA_ID) has no CKA_EC_POINT");
                return public_key_from_ec(pe.first.empty() && own.ec_params ? *own.ec_params : pe.first, pe.second);
            }
            if (const auto certs = certificates_for(key); !certs.empty())
                return public_key_from_spki(crypto_backend().certificate_public_key(certs.front()));
        }
        // Every finished RSA key has its modulus, every EC key its curve: a half-written one (as
        // SoftHSM2 shows it) has them empty. The public exponent is optional on a private key.
        const auto present = [](const std::optional<Bytes>& v) { return v && !v->empty(); };
        if (key.type == CKK_RSA ? !present(own.modulus) : !present(own.ec_params))
            throw Unfinished(key.type == CKK_RSA ? "it has no CKA_MODULUS" : "it has no CKA_EC_PARAMS");
        if (key.type == CKK_RSA && present(own.exponent)) return public_key_from_rsa(*own.modulus, *own.exponent);
        return std::nullopt;
    }

    // X.509 certificates with the key's CKA_ID (DER), as the token lists them.
    std::vector<Bytes> certificates_for(const ObjectInfo& key) {
        std::vector<Bytes> out;
        if (key.id.empty()) return out;
        for (const ObjectInfo& c : certificates_) {
            if (c.id != key.id || c.type != CKC_X_509) continue;
            auto value = attrs<std::optional<Bytes>>(c.handle, [](const CallContext& ctx, CK_OBJECT_HANDLE h) {
                return read_attribute(ctx, h, CKA_VALUE, kMaxCertificateBytes, "the certificate's CKA_VALUE");
            });
            if (value && !value->empty()) out.push_back(std::move(*value));
        }
        return out;
    }

    void add_private_key(const ObjectInfo& o) {
        if (o.type != CKK_RSA && o.type != CKK_EC)
            throw KeychainError(ErrorCode::Unsupported, "key type " + std::to_string(o.type) + " is neither RSA nor EC");
        const auto pub = public_half(o);
        if (!pub)
            throw TokenFault("its public half is not on the token (no CKA_PUBLIC_KEY_INFO, and no public key or "
                             "certificate with its CKA_ID)");
        if ((pub->kind == KeyKind::Rsa) != (o.type == CKK_RSA))
            throw TokenFault("its public key is of another type than the private key");
        // Leaf first: the certificate of this very key, then the others with its CKA_ID.
        std::vector<Bytes> chain;
        std::vector<Bytes> others;
        for (Bytes& cert : certificates_for(o)) {
            bool leaf = false;
            try {
                leaf = chain.empty() && crypto_backend().certificate_public_key(cert) == pub->spki;
            } catch (const KeychainError&) {
                log::warning(conn_->who() + ": a certificate with the CKA_ID of " + describe(o) + " does not parse; left out");
                continue;
            }
            (leaf ? chain : others).push_back(std::move(cert));
        }
        if (!chain.empty()) chain.insert(chain.end(), others.begin(), others.end());
        else if (!others.empty())
            log::warning(conn_->who() + ": no certificate with the CKA_ID of " + describe(o) +
                         " is for its key; it is served without one");
        auto obj = object_of(o);
        obj->always_authenticate = attrs<bool>(o.handle, [](const CallContext& c, CK_OBJECT_HANDLE h) {
            return read_bool(c, h, CKA_ALWAYS_AUTHENTICATE, "CKA_ALWAYS_AUTHENTICATE").value_or(false);
        });
        const std::string location = object_uri(conn_->label(), conn_->serial(), o.label, o.id, CKO_PRIVATE_KEY);
        auto key = Key::identity(std::make_unique<TokenPrivateKey>(conn_, std::move(obj), *pub), std::move(chain),
                                 key_label(o.label));
        out_.keys.push_back({std::move(key), location});
    }

    void add_aes_key(const ObjectInfo& o) {
        struct Props {
            std::optional<CK_ULONG> value_len;
            std::optional<bool> encrypt, decrypt;
        };
        const Props p = attrs<Props>(o.handle, [](const CallContext& c, CK_OBJECT_HANDLE h) {
            return Props{read_ulong(c, h, CKA_VALUE_LEN, "CKA_VALUE_LEN"), read_bool(c, h, CKA_ENCRYPT, "CKA_ENCRYPT"),
                         read_bool(c, h, CKA_DECRYPT, "CKA_DECRYPT")};
        });
        if (o.type != CKK_AES) throw KeychainError(ErrorCode::Unsupported, "it is not an AES key");
        if (p.value_len.value_or(0) == 0) throw Unfinished("it has no length (CKA_VALUE_LEN)");
        if (p.value_len.value_or(0) != Key::kAesKeySize)
            throw KeychainError(ErrorCode::Unsupported, "it is not a 256-bit AES key (CKA_VALUE_LEN " +
                                                            std::to_string(p.value_len.value_or(0)) + ")");
        if (!p.decrypt.value_or(false)) throw KeychainError(ErrorCode::Unsupported, "it may not decrypt (CKA_DECRYPT)");
        if (!p.encrypt.value_or(false))
            log::warning(conn_->who() + ": " + describe(o) + " may not encrypt (CKA_ENCRYPT): it can unwrap, not wrap");
        const KeyId id = aes_key_id(o);
        const std::string location = object_uri(conn_->label(), conn_->serial(), o.label, o.id, CKO_SECRET_KEY);
        out_.keys.push_back(
            {Key::aes_elsewhere(std::make_unique<TokenAesKey>(conn_, object_of(o)), id, key_label(o.label)), location});
    }

    // DESIGN.md's id, SHA-256("keychaind key-id v1" ‖ key) truncated, computed by the token
    // itself, so a data key wrapped under it unwraps under the same key given in software too.
    KeyId aes_key_id(const ObjectInfo& o) {
        try {
            const Bytes digest = attrs<Bytes>(o.handle, [](const CallContext& c, CK_OBJECT_HANDLE h) {
                CK_MECHANISM m{CKM_SHA256, nullptr, 0};
                check_rv(c.fn->C_DigestInit(c.session, &m), "C_DigestInit");
                Bytes prefix(kKeyIdPrefix.begin(), kKeyIdPrefix.end());
                check_rv(c.fn->C_DigestUpdate(c.session, prefix.data(), prefix.size()), "C_DigestUpdate");
                check_rv(c.fn->C_DigestKey(c.session, h), "C_DigestKey");
                Bytes out(32);
                CK_ULONG len = out.size();
                check_rv(c.fn->C_DigestFinal(c.session, out.data(), &len), "C_DigestFinal");
                if (len != out.size())
                    throw TokenFault("C_DigestFinal returned " + std::to_string(len) + " bytes of a SHA-256 digest");
                return out;
            });
            return *KeyId::from_bytes(std::span(digest).first(KeyId::kSymmetricSize));
        } catch (const TokenCallError& e) {
            if (!object_alone(e)) throw;
            log::warning(conn_->who() + ": " + describe(o) + " cannot be digested inside the token (" + e.what() +
                         "); its id comes from the token's serial, CKA_ID and CKA_LABEL instead, so data keys "
                         "wrapped under it will not unwrap under the same key given in software");
        }
        return fallback_aes_key_id(conn_->serial(), o.id, o.label);
    }

    const std::shared_ptr<TokenConnection>& conn_;
    const std::vector<Pkcs11Uri>& selectors_;
    TokenConnection::Session session_;
    std::vector<ObjectInfo> publics_;
    std::vector<ObjectInfo> certificates_;
    TokenKeyScan out_;
};

}  // namespace

KeyId fallback_aes_key_id(const std::string& serial, std::span<const uint8_t> id, const std::string& label) {
    Bytes in(kFallbackIdPrefix.begin(), kFallbackIdPrefix.end());
    in.insert(in.end(), serial.begin(), serial.end());
    in.insert(in.end(), id.begin(), id.end());
    in.insert(in.end(), label.begin(), label.end());
    uint8_t digest[32];
    crypto_backend().sha256(in, digest);
    return *KeyId::from_bytes(std::span<const uint8_t>(digest, KeyId::kSymmetricSize));
}

TokenKeyScan read_token_keys(const std::shared_ptr<TokenConnection>& conn, const std::vector<Pkcs11Uri>& selectors) {
    return Reader(conn, selectors).read();
}

}  // namespace keychaind::token
