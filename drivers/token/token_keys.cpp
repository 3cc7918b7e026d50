// Token keys: SIGN, DECRYPT and AES-GCM as PKCS#11 calls, every returned length checked.
#include "token/token_keys.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

namespace keychaind::token {
namespace {

CK_MECHANISM_TYPE hash_mechanism(size_t digest_size) {
    switch (digest_size) {
        case 48: return CKM_SHA384;
        case 64: return CKM_SHA512;
        default: return CKM_SHA256;
    }
}

CK_RSA_PKCS_MGF_TYPE mgf_of(size_t digest_size) {
    switch (digest_size) {
        case 48: return CKG_MGF1_SHA384;
        case 64: return CKG_MGF1_SHA512;
        default: return CKG_MGF1_SHA256;
    }
}

std::string sizes(CK_ULONG got, size_t want) {
    return std::to_string(got) + " bytes; expected " + std::to_string(want);
}

// A key with CKA_ALWAYS_AUTHENTICATE wants the PIN once more right after its operation's Init.
void context_login(const CallContext& c, const SecretBytes& pin) {
    check_rv(c.fn->C_Login(c.session, CKU_CONTEXT_SPECIFIC, const_cast<CK_UTF8CHAR*>(pin.data()), pin.size()),
             "C_Login (context-specific)");
}

bool is_pss(SignAlgorithm a) {
    return a == SignAlgorithm::RsaPssSha256 || a == SignAlgorithm::RsaPssSha384 || a == SignAlgorithm::RsaPssSha512;
}

}  // namespace

CK_OBJECT_HANDLE find_object(const CallContext& c, const TokenObject& obj) {
    CK_OBJECT_CLASS cls = obj.cls;
    CK_KEY_TYPE type = obj.key_type;
    std::vector<CK_ATTRIBUTE> tmpl = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type}};
    std::vector<uint8_t> id = obj.id;
    std::string label = obj.label;
    if (!id.empty()) tmpl.push_back({CKA_ID, id.data(), id.size()});
    if (!label.empty()) tmpl.push_back({CKA_LABEL, label.data(), label.size()});
    check_rv(c.fn->C_FindObjectsInit(c.session, tmpl.data(), tmpl.size()), "C_FindObjectsInit");
    std::array<CK_OBJECT_HANDLE, 2> found{};
    CK_ULONG n = 0;
    const CK_RV rv = c.fn->C_FindObjects(c.session, found.data(), found.size(), &n);
    c.fn->C_FindObjectsFinal(c.session);
    check_rv(rv, "C_FindObjects");
    if (n > found.size()) throw TokenFault("C_FindObjects returned " + std::to_string(n) + " handles for room for 2");
    if (n > 1) throw TokenFault("several objects have the key's class, CKA_ID and CKA_LABEL");
    return n == 1 ? found[0] : CK_INVALID_HANDLE;
}

// --- private keys --------------------------------------------------------------------------

TokenPrivateKey::TokenPrivateKey(std::shared_ptr<TokenConnection> conn, std::shared_ptr<TokenObject> obj,
                                 TokenPublicKey pub)
    : conn_(std::move(conn)), obj_(std::move(obj)), pub_(std::move(pub)) {}

size_t TokenPrivateKey::signature_size() const {
    return pub_.kind == KeyKind::Rsa ? (pub_.bits + 7) / 8 : 2 * ec_field_size(pub_.kind);
}

size_t TokenPrivateKey::sign_into(SignAlgorithm alg, std::span<const uint8_t> digest, std::span<uint8_t> out) const {
    // The same checks, in the same words, as the software backend.
    const size_t want = sign_algorithm_digest_size(alg);
    if (want != 0 && digest.size() != want)
        throw KeychainError(ErrorCode::BadRequest, std::string(sign_algorithm_name(alg)) + " needs a " +
                                                       std::to_string(want) + "-byte digest, got " +
                                                       std::to_string(digest.size()));
    const bool rsa = pub_.kind == KeyKind::Rsa;
    // Token keys are RSA or EC (no CKM_EDDSA here): ed25519 never fits one.
    if (!sign_algorithm_fits(alg, pub_.kind))
        throw KeychainError(ErrorCode::Unsupported, std::string(sign_algorithm_name(alg)) + " does not fit a " +
                                                        std::string(key_kind_name(pub_.kind)) + " key");
    const size_t expected = signature_size();
    std::vector<uint8_t> data;
    CK_MECHANISM_TYPE mech = CKM_ECDSA;
    CK_RSA_PKCS_PSS_PARAMS pss{};
    if (alg == SignAlgorithm::RsaPkcs1Raw) {
        if (digest.empty() || digest.size() + 11 > expected)
            throw KeychainError(ErrorCode::BadRequest,
                                "rsa-pkcs1-raw input must be 1.." + std::to_string(expected - 11) + " bytes");
        mech = CKM_RSA_PKCS;
        data.assign(digest.begin(), digest.end());
    } else if (is_pss(alg)) {
        mech = CKM_RSA_PKCS_PSS;
        // mbedTLS signs PSS with the largest salt up to the hash length: the hash length for
        // every key of 2048 bits and more.
        pss.hashAlg = hash_mechanism(want);
        pss.mgf = mgf_of(want);
        pss.sLen = want;
        data.assign(digest.begin(), digest.end());
    } else if (rsa) {
        mech = CKM_RSA_PKCS;
        const auto prefix = digest_info_prefix(alg);
        data.assign(prefix.begin(), prefix.end());
        data.insert(data.end(), digest.begin(), digest.end());
    } else {
        data.assign(digest.begin(), digest.end());
    }
    const auto pin = obj_->always_authenticate ? conn_->pin() : nullptr;
    std::vector<uint8_t> sig = call_with_object<std::vector<uint8_t>>(
        conn_, obj_, [data, mech, pss, expected, pin](const CallContext& c, CK_OBJECT_HANDLE h) {
            CK_RSA_PKCS_PSS_PARAMS params = pss;
            CK_MECHANISM m{mech, nullptr, 0};
            if (mech == CKM_RSA_PKCS_PSS) {
                m.pParameter = &params;
                m.ulParameterLen = sizeof params;
            }
            std::vector<uint8_t> in = data;
            check_rv(c.fn->C_SignInit(c.session, &m, h), "C_SignInit");
            if (pin) context_login(c, *pin);
            std::vector<uint8_t> made(expected);
            CK_ULONG len = made.size();
            const CK_RV rv = c.fn->C_Sign(c.session, in.data(), in.size(), made.data(), &len);
            if (rv == CKR_BUFFER_TOO_SMALL)
                throw TokenFault("C_Sign asks for " + std::to_string(len) + " bytes for a signature of " +
                                 std::to_string(expected));
            check_rv(rv, "C_Sign");
            if (len != expected) throw TokenFault("C_Sign returned " + sizes(len, expected));
            return made;
        });
    if (!rsa) {
        try {
            sig = ecdsa_raw_to_der(sig, ec_field_size(pub_.kind));
        } catch (const TokenFault& e) {
            throw KeychainError(ErrorCode::TokenError, conn_->who() + ": " + e.what());
        }
    }
    check_signature_room(sig.size(), out);
    std::copy(sig.begin(), sig.end(), out.begin());
    return sig.size();
}

SecretBytes TokenPrivateKey::decrypt(DecryptAlgorithm alg, std::span<const uint8_t> ct) const {
    if (pub_.kind != KeyKind::Rsa) throw KeychainError(ErrorCode::Unsupported, "decrypt needs an RSA key");
    const size_t k = signature_size();
    if (ct.size() != k)
        throw KeychainError(ErrorCode::BadRequest, "RSA-OAEP ciphertext must be " + std::to_string(k) +
                                                       " bytes, got " + std::to_string(ct.size()));
    const bool sha1 = alg == DecryptAlgorithm::RsaOaepSha1;
    const size_t hash_len = sha1 ? 20 : 32;
    const std::string name = sha1 ? "rsa-oaep-sha1" : "rsa-oaep-sha256";
    const unsigned raw_bit = sha1 ? 1u : 2u;
    if ((obj_->raw_oaep.load() & raw_bit) != 0) return decrypt_raw(sha1, ct, "");
    struct Result {
        CK_RV refused = CKR_OK;  // C_DecryptInit would not take the parameters
        bool failed = false;     // the padding did not check
        std::shared_ptr<SecretBytes> plaintext;
    };
    const std::vector<uint8_t> input(ct.begin(), ct.end());
    const auto pin = obj_->always_authenticate ? conn_->pin() : nullptr;
    const Result r = call_with_object<Result>(conn_, obj_, [input, sha1, k, hash_len, pin](const CallContext& c, CK_OBJECT_HANDLE h) {
        CK_RSA_PKCS_OAEP_PARAMS params{};
        params.hashAlg = sha1 ? CKM_SHA_1 : CKM_SHA256;
        params.mgf = sha1 ? CKG_MGF1_SHA1 : CKG_MGF1_SHA256;
        params.source = CKZ_DATA_SPECIFIED;
        CK_MECHANISM m{CKM_RSA_PKCS_OAEP, &params, sizeof params};
        Result out;
        const CK_RV init = c.fn->C_DecryptInit(c.session, &m, h);
        // SoftHSM2 2.6 does OAEP with SHA-1 only, and says so with CKR_ARGUMENTS_BAD.
        if (init == CKR_ARGUMENTS_BAD || init == CKR_MECHANISM_PARAM_INVALID || init == CKR_MECHANISM_INVALID) {
            out.refused = init;
            return out;
        }
        check_rv(init, "C_DecryptInit");
        if (pin) context_login(c, *pin);
        std::vector<uint8_t> in = input;
        out.plaintext = std::make_shared<SecretBytes>(k);
        CK_ULONG len = out.plaintext->size();
        const CK_RV rv = c.fn->C_Decrypt(c.session, in.data(), in.size(), out.plaintext->data(), &len);
        // The input is exactly k bytes, so a failure here is the padding's: SoftHSM2 2.6 reports
        // it as CKR_GENERAL_ERROR.
        if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR) {
            out.failed = true;
            return out;
        }
        if (rv == CKR_BUFFER_TOO_SMALL)
            throw TokenFault("C_Decrypt asks for " + std::to_string(len) + " bytes for at most " + std::to_string(k));
        check_rv(rv, "C_Decrypt");
        if (len > k - 2 * hash_len - 2)
            throw TokenFault("C_Decrypt returned " + std::to_string(len) + " bytes; RSA-OAEP gives at most " +
                             std::to_string(k - 2 * hash_len - 2));
        out.plaintext->truncate(len);
        return out;
    });
    if (r.refused != CKR_OK) {
        log::info(conn_->who() + " refuses " + name + " for key \"" + log::escape(obj_->label) + "\" (C_DecryptInit: " +
                  ckr_name(r.refused) + "); decrypting with raw RSA in the token and checking the padding here");
        obj_->raw_oaep.fetch_or(raw_bit);
        return decrypt_raw(sha1, ct, ckr_name(r.refused));
    }
    if (r.failed) throw KeychainError(ErrorCode::BadRequest, "RSA-OAEP decryption failed");
    return std::move(*r.plaintext);
}

SecretBytes TokenPrivateKey::decrypt_raw(bool sha1, std::span<const uint8_t> ct, const std::string& refused) const {
    const size_t k = signature_size();
    const std::vector<uint8_t> input(ct.begin(), ct.end());
    const auto pin = obj_->always_authenticate ? conn_->pin() : nullptr;
    const std::string unsupported = conn_->who() + " cannot do " + (sha1 ? "rsa-oaep-sha1" : "rsa-oaep-sha256") +
                                    " with this key" + (refused.empty() ? "" : " (C_DecryptInit: " + refused + ")") +
                                    " nor raw RSA (C_DecryptInit with CKM_RSA_X_509: ";
    // The block is k bytes, left-padded with zeros should the token drop leading zero bytes.
    const auto em = call_with_object<std::shared_ptr<SecretBytes>>(
        conn_, obj_, [input, k, pin, unsupported](const CallContext& c, CK_OBJECT_HANDLE h) {
            CK_MECHANISM m{CKM_RSA_X_509, nullptr, 0};
            const CK_RV init = c.fn->C_DecryptInit(c.session, &m, h);
            if (rv_unsupported(init) || init == CKR_ARGUMENTS_BAD)
                throw KeychainError(ErrorCode::Unsupported, unsupported + ckr_name(init) + ")");
            check_rv(init, "C_DecryptInit");
            if (pin) context_login(c, *pin);
            std::vector<uint8_t> in = input;
            SecretBytes out(k);
            CK_ULONG len = out.size();
            const CK_RV rv = c.fn->C_Decrypt(c.session, in.data(), in.size(), out.data(), &len);
            if (rv == CKR_BUFFER_TOO_SMALL)
                throw TokenFault("C_Decrypt asks for " + std::to_string(len) + " bytes for " + std::to_string(k));
            check_rv(rv, "C_Decrypt");
            if (len > k) throw TokenFault("C_Decrypt returned " + std::to_string(len) + " bytes; expected " + std::to_string(k));
            auto block = std::make_shared<SecretBytes>(k);
            std::memcpy(block->data() + (k - len), out.data(), len);
            return block;
        });
    auto plaintext = oaep_decode(em->span(), sha1 ? 20 : 32);
    if (!plaintext) throw KeychainError(ErrorCode::BadRequest, "RSA-OAEP decryption failed");
    return std::move(*plaintext);
}

// --- AES keys ------------------------------------------------------------------------------

TokenAesKey::TokenAesKey(std::shared_ptr<TokenConnection> conn, std::shared_ptr<TokenObject> obj)
    : conn_(std::move(conn)), obj_(std::move(obj)) {}

namespace {

struct GcmInput {
    std::array<uint8_t, 12> nonce{};
    std::vector<uint8_t> aad;
};

GcmInput gcm_input(std::span<const uint8_t> nonce, std::span<const uint8_t> aad) {
    if (nonce.size() != 12) throw KeychainError(ErrorCode::Internal, "AES-GCM called with a nonce that is not 12 bytes");
    GcmInput in;
    std::memcpy(in.nonce.data(), nonce.data(), 12);
    in.aad.assign(aad.begin(), aad.end());
    return in;
}

CK_GCM_PARAMS gcm_params(GcmInput& in) {
    CK_GCM_PARAMS p{};
    p.pIv = in.nonce.data();
    p.ulIvLen = in.nonce.size();
    p.ulIvBits = in.nonce.size() * 8;
    p.pAAD = in.aad.data();
    p.ulAADLen = in.aad.size();
    p.ulTagBits = 128;
    return p;
}

}  // namespace

void TokenAesKey::gcm_encrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                              std::span<const uint8_t> pt, std::span<uint8_t> ct, std::span<uint8_t> tag) const {
    if (tag.size() != 16 || ct.size() != pt.size())
        throw KeychainError(ErrorCode::Internal, "AES-GCM called with a bad tag or output size");
    const GcmInput input = gcm_input(nonce, aad);
    auto plaintext = std::make_shared<const SecretBytes>(pt);
    const size_t want = pt.size() + 16;
    const auto out = call_with_object<std::shared_ptr<SecretBytes>>(
        conn_, obj_, [input, plaintext, want](const CallContext& c, CK_OBJECT_HANDLE h) {
            GcmInput in = input;
            CK_GCM_PARAMS p = gcm_params(in);
            CK_MECHANISM m{CKM_AES_GCM, &p, sizeof p};
            check_rv(c.fn->C_EncryptInit(c.session, &m, h), "C_EncryptInit");
            auto o = std::make_shared<SecretBytes>(want);
            CK_ULONG len = o->size();
            const CK_RV rv = c.fn->C_Encrypt(c.session, const_cast<uint8_t*>(plaintext->data()), plaintext->size(),
                                             o->data(), &len);
            if (rv == CKR_BUFFER_TOO_SMALL)
                throw TokenFault("C_Encrypt asks for " + std::to_string(len) + " bytes for " + std::to_string(want));
            check_rv(rv, "C_Encrypt");
            if (len != want) throw TokenFault("C_Encrypt returned " + sizes(len, want) + " (ciphertext and tag)");
            return o;
        });
    std::memcpy(ct.data(), out->data(), pt.size());
    std::memcpy(tag.data(), out->data() + pt.size(), 16);
}

bool TokenAesKey::gcm_decrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                              std::span<const uint8_t> ct, std::span<const uint8_t> tag,
                              std::span<uint8_t> pt) const {
    if (tag.size() != 16 || pt.size() != ct.size())
        throw KeychainError(ErrorCode::Internal, "AES-GCM called with a bad tag or output size");
    const GcmInput input = gcm_input(nonce, aad);
    std::vector<uint8_t> sealed(ct.begin(), ct.end());
    sealed.insert(sealed.end(), tag.begin(), tag.end());
    const size_t want = ct.size();
    // nullptr: the tag does not authenticate.
    const auto out = call_with_object<std::shared_ptr<SecretBytes>>(
        conn_, obj_, [input, sealed, want](const CallContext& c, CK_OBJECT_HANDLE h) -> std::shared_ptr<SecretBytes> {
            GcmInput in = input;
            CK_GCM_PARAMS p = gcm_params(in);
            CK_MECHANISM m{CKM_AES_GCM, &p, sizeof p};
            check_rv(c.fn->C_DecryptInit(c.session, &m, h), "C_DecryptInit");
            std::vector<uint8_t> data = sealed;
            // Room for the tag too: some modules want the whole input's length before they
            // know how much of it is plaintext.
            auto o = std::make_shared<SecretBytes>(data.size());
            CK_ULONG len = o->size();
            const CK_RV rv = c.fn->C_Decrypt(c.session, data.data(), data.size(), o->data(), &len);
            // SoftHSM2 2.6 reports a tag that does not match as CKR_GENERAL_ERROR; the input is
            // well-formed here (ciphertext and a 16-byte tag), so that can only be the tag.
            if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR)
                return nullptr;
            if (rv == CKR_BUFFER_TOO_SMALL)
                throw TokenFault("C_Decrypt asks for " + std::to_string(len) + " bytes for " + std::to_string(want));
            check_rv(rv, "C_Decrypt");
            if (len != want) throw TokenFault("C_Decrypt returned " + sizes(len, want));
            o->truncate(len);
            return o;
        });
    if (!out) {
        secure_wipe(pt.data(), pt.size());
        return false;
    }
    std::memcpy(pt.data(), out->data(), want);
    return true;
}

}  // namespace keychaind::token
