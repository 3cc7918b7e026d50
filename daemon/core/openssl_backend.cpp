// CryptoBackend on OpenSSL 3 libcrypto, through the EVP interfaces only.
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <string>

#include "core/crypto_backend.h"
#include "core/error.h"
#include "core/openssl_types.h"

namespace keychaind {
namespace {

// The oldest error on this thread's OpenSSL queue, as text. The queue is emptied, so that a
// later failure on this thread never reports this one.
std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "OpenSSL gave no reason";
    const char* lib = ERR_lib_error_string(e);
    const char* reason = ERR_reason_error_string(e);
    return std::string("OpenSSL error: ") + (lib != nullptr ? lib : "unknown library") + ": " +
           (reason != nullptr ? reason : "reason " + std::to_string(ERR_GET_REASON(e)));
}

// OpenSSL's allocator, made to wipe what it frees. malloc_usable_size: the whole block, whatever
// size was asked for. realloc moves to a new block so the old one can be wiped first.
void wiping_free(void* p, const char*, int) {
    if (p == nullptr) return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}
void* plain_malloc(size_t n, const char*, int) { return malloc(n); }
void* wiping_realloc(void* p, size_t n, const char* file, int line) {
    if (p == nullptr) return malloc(n);
    if (n == 0) {
        wiping_free(p, file, line);
        return nullptr;
    }
    const size_t old = malloc_usable_size(p);
    void* q = malloc(n);
    if (q == nullptr) return nullptr;
    std::memcpy(q, p, std::min(old, n));
    wiping_free(p, file, line);
    return q;
}

// OpenSSL's secure heap holds the private numbers of every key this backend parses (RSA d, p, q
// and the CRT values, the EC scalar, the 32-byte Ed25519 seed: OpenSSL 3's ECX keys take their
// private part from OPENSSL_secure_zalloc and free it with OPENSSL_secure_clear_free; the
// expanded secret scalar is derived on the stack at each signature and cleansed), the DER that
// PEM decoding yields, and ECDSA nonces: pages with guard pages either side, mlocked,
// MADV_DONTDUMP (and MADV_WIPEONFORK, below), wiped on free. mbedTLS's copies rely on
// the daemon's mlockall and PR_SET_DUMPABLE alone; the secure heap also keeps these numbers out
// of the ordinary heap, where an over-read anywhere in the process (Heartbleed's kind) could
// reach them, and locked where mlockall is not in force (the tests, keychainctl).
//
// Its size is fixed when it is made, once per process. An RSA-2048 key's numbers take 896 bytes
// of it, an RSA-4096 key's 1,792, an EC key's 32 or 64 (the unit tests measure this), and the
// private random generator 512: 4 MiB holds over 2,000 RSA-4096 keys. Its pages are locked as
// they are first touched (MLOCK_ONFAULT), so the unused part costs RLIMIT_MEMLOCK allowance only.
constexpr size_t kSecureHeapBytes = size_t{4} << 20;
constexpr size_t kSecureHeapMinBlock = 32;
// Room that parsing one key may need (an RSA-4096 key's numbers, the PEM reader's buffers).
constexpr size_t kSecureHeapPerKey = 32 * 1024;

// OpenSSL maps its secure heap MADV_DONTDUMP but not MADV_WIPEONFORK: a child forked later
// (a PKCS#11 module's helper, a library's fork) would get a copy of every private key in it. The
// heap is one page-aligned arena; CRYPTO_secure_allocated() says page by page where it ends.
// Best effort, as for SecretBytes' arena: MADV_WIPEONFORK is there on every kernel Debian 12 runs.
void wipe_secure_heap_on_fork() {
    void* probe = OPENSSL_secure_malloc(1);
    if (probe == nullptr) return;
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    uintptr_t start = reinterpret_cast<uintptr_t>(probe) & ~(page - 1);
    uintptr_t end = start + page;
    while (CRYPTO_secure_allocated(reinterpret_cast<void*>(start - page)) == 1) start -= page;
    while (CRYPTO_secure_allocated(reinterpret_cast<void*>(end)) == 1) end += page;
    OPENSSL_secure_free(probe);
#ifdef MADV_WIPEONFORK
    madvise(reinterpret_cast<void*>(start), end - start, MADV_WIPEONFORK);
#endif
}

// Makes the secure heap (unless another part of the process did); returns why it cannot be used.
std::string init_secure_heap() {
    if (CRYPTO_secure_malloc_initialized()) return std::string();
    switch (CRYPTO_secure_malloc_init(kSecureHeapBytes, kSecureHeapMinBlock)) {
        case 1: return std::string();
        case 2:
            // The heap works but mlock (or MADV_DONTDUMP) failed: only the demo-only
            // allow_unlocked_memory accepts that, as it does for SecretBytes.
            if (!secure_arena::require_locked()) return std::string();
            CRYPTO_secure_malloc_done();
            return std::string(
                "cannot lock OpenSSL's secure heap (mlock failed; raise RLIMIT_MEMLOCK or "
                "grant CAP_IPC_LOCK)");
        default:
            return "cannot set up OpenSSL's secure heap for private keys (" + openssl_error() + ")";
    }
}

// Returns the heap's size, or 0 when another part of the process made it first (that heap
// serves; its size is not known). Throws rather than run with private keys in the ordinary heap.
size_t set_up_secure_heap() {
    static const std::string failure = [] {
        std::string why = init_secure_heap();
        if (why.empty()) wipe_secure_heap_on_fork();
        return why;
    }();
    static const bool ours = failure.empty() && CRYPTO_secure_malloc_initialized() == 1;
    if (!failure.empty()) throw KeychainError(ErrorCode::Internal, failure);
    return ours ? kSecureHeapBytes : 0;
}

const EVP_MD* md_of(SignAlgorithm a) {
    switch (sign_algorithm_digest_size(a)) {
        case 32: return EVP_sha256();
        case 48: return EVP_sha384();
        case 64: return EVP_sha512();
        default: return nullptr;
    }
}
bool is_pss(SignAlgorithm a) {
    return a == SignAlgorithm::RsaPssSha256 || a == SignAlgorithm::RsaPssSha384 ||
           a == SignAlgorithm::RsaPssSha512;
}

// Padding, hash, MGF1 hash and salt length of a signature algorithm, on a sign or verify
// context: PSS takes MGF1 with the same hash and a salt as long as the hash (TLS 1.3 requires
// it), both ways. rsa-pkcs1-raw sets no hash: OpenSSL then pads the caller's DigestInfo as is.
bool set_signature_params(EVP_PKEY_CTX* ctx, SignAlgorithm alg) {
    if (!sign_algorithm_is_rsa(alg)) return EVP_PKEY_CTX_set_signature_md(ctx, md_of(alg)) > 0;
    if (alg == SignAlgorithm::RsaPkcs1Raw)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    if (!is_pss(alg))
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
               EVP_PKEY_CTX_set_signature_md(ctx, md_of(alg)) > 0;
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_signature_md(ctx, md_of(alg)) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md_of(alg)) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0;
}

// A context per operation: EVP_PKEY_CTX is not safe to share, the EVP_PKEY under it is.
ossl::PkeyCtx operation_context(EVP_PKEY* pkey) {
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
    if (!ctx) throw KeychainError(ErrorCode::Internal, "cannot make a key context: " + openssl_error());
    return ctx;
}

// Key ids are SHA-256 of the SubjectPublicKeyInfo, so both backends must write the same bytes
// for a key: mbedTLS writes an EC key's named curve and uncompressed point, whatever the input
// had.
void use_mbedtls_ec_encoding(EVP_PKEY* pkey) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(
            OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
            const_cast<char*>(OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED), 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
                                         const_cast<char*>(OSSL_PKEY_EC_ENCODING_GROUP), 0),
        OSSL_PARAM_construct_end()};
    if (EVP_PKEY_set_params(pkey, params) != 1)
        throw KeychainError(ErrorCode::Internal, "cannot set the EC key's encoding: " + openssl_error());
}

std::vector<uint8_t> write_spki(EVP_PKEY* pkey) {
    if (EVP_PKEY_is_a(pkey, "EC")) use_mbedtls_ec_encoding(pkey);
    const int n = i2d_PUBKEY(pkey, nullptr);
    std::vector<uint8_t> out(n > 0 ? static_cast<size_t>(n) : 0);
    unsigned char* p = out.data();
    if (n <= 0 || i2d_PUBKEY(pkey, &p) != n)
        throw KeychainError(ErrorCode::Internal, "cannot encode public key: " + openssl_error());
    return out;
}

// The next PEM block of `bio` into `block`; false at the end of the input. Throws BadRequest
// (with `what` in the message) for a block that is not valid PEM.
bool read_pem_block(BIO* bio, ossl::PemBlock& block, unsigned flags, const std::string& what) {
    block.reset();
    if (PEM_read_bio_ex(bio, &block.name, &block.header, &block.data, &block.size,
                        flags | PEM_FLAG_EAY_COMPATIBLE) == 1)
        return true;
    const unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return false;
    }
    throw KeychainError(ErrorCode::BadRequest, what + " (" + openssl_error() + ")");
}

ossl::Bio memory_bio(std::span<const uint8_t> in) {
    if (in.size() > INT_MAX) throw KeychainError(ErrorCode::BadRequest, "input over 2 GiB");
    ossl::Bio bio(BIO_new_mem_buf(in.data(), static_cast<int>(in.size())));
    if (!bio) throw KeychainError(ErrorCode::Internal, "cannot read input: " + openssl_error());
    return bio;
}

// An encrypted key needs a passphrase the daemon never has: refuse at once, never prompt.
int refuse_passphrase(char*, size_t, size_t*, const OSSL_PARAM[], void*) { return 0; }

// PKCS#1, SEC1 or PKCS#8 DER (any key type; the caller classifies). Null when it does not parse.
// OpenSSL's decoder copies the DER to an ordinary heap buffer that it frees unwiped: the daemon's
// mlockall and PR_SET_DUMPABLE keep that copy from swap and dumps until reuse overwrites it,
// as for mbedTLS's heap. No public API lets the caller supply that buffer.
ossl::Pkey decode_private_der(std::span<const uint8_t> der) {
    if (der.empty()) return {};
    EVP_PKEY* out = nullptr;
    ossl::DecoderCtx dctx(OSSL_DECODER_CTX_new_for_pkey(
        &out, "DER", nullptr, nullptr, OSSL_KEYMGMT_SELECT_PRIVATE_KEY, nullptr, nullptr));
    if (!dctx || OSSL_DECODER_CTX_set_passphrase_cb(dctx.get(), refuse_passphrase, nullptr) != 1)
        throw KeychainError(ErrorCode::Internal, "cannot set up the key decoder: " + openssl_error());
    const unsigned char* p = der.data();
    size_t left = der.size();
    if (OSSL_DECODER_from_data(dctx.get(), &p, &left) != 1) {
        EVP_PKEY_free(out);
        return {};
    }
    return ossl::Pkey(out);
}

constexpr char kUnparsedKey[] =
    "private key does not parse as PEM/DER PKCS#1, PKCS#8 or SEC1 (unencrypted)";

// PEM: the first RSA, EC or PKCS#8 private key block, anywhere in the input (as mbedTLS finds
// it; an "EC PARAMETERS" block or a certificate may come first). Its DER stays in the secure heap.
ossl::Pkey decode_private_key(std::span<const uint8_t> in) {
    if (!looks_like_pem(in)) return decode_private_der(in);
    const ossl::Bio bio = memory_bio(in);
    ossl::PemBlock block;
    while (read_pem_block(bio.get(), block, PEM_FLAG_SECURE, kUnparsedKey)) {
        const std::string_view name(block.name);
        if (name != "RSA PRIVATE KEY" && name != "EC PRIVATE KEY" && name != "PRIVATE KEY" &&
            name != "ENCRYPTED PRIVATE KEY")
            continue;
        // Legacy PEM encryption ("Proc-Type: 4,ENCRYPTED") lives in the headers.
        if (block.header[0] != '\0') return {};
        return decode_private_der({block.data, static_cast<size_t>(block.size)});
    }
    return {};
}

struct KeyShape {
    KeyKind kind;
    unsigned bits;
};

KeyShape classify(EVP_PKEY* pkey) {
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        const unsigned bits = static_cast<unsigned>(EVP_PKEY_get_bits(pkey));
        check_rsa_key_bits(bits);
        return {KeyKind::Rsa, bits};
    }
    // Ed25519 has one size; 256 is the key's bit length as RFC 8032 and OpenSSL count it.
    if (EVP_PKEY_is_a(pkey, "ED25519")) return {KeyKind::Ed25519, 256};
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[80];
        size_t len = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) != 1) {
            ERR_clear_error();
            throw_unsupported_curve();
        }
        switch (OBJ_txt2nid(group)) {
            case NID_X9_62_prime256v1: return {KeyKind::EcP256, 256};
            case NID_secp384r1: return {KeyKind::EcP384, 384};
            default: throw_unsupported_curve();
        }
    }
    const char* type = EVP_PKEY_get0_type_name(pkey);
    throw KeychainError(ErrorCode::Unsupported,
                        std::string("unsupported key type ") + (type != nullptr ? type : "unknown"));
}

class OsslPrivateKey final : public PrivateKey {
public:
    explicit OsslPrivateKey(ossl::Pkey pkey) : pkey_(std::move(pkey)) {
        const KeyShape shape = classify(pkey_.get());
        kind_ = shape.kind;
        bits_ = shape.bits;
        modulus_bytes_ = kind_ == KeyKind::Rsa ? static_cast<size_t>(EVP_PKEY_get_size(pkey_.get())) : 0;
        max_signature_bytes_ = static_cast<size_t>(std::max(EVP_PKEY_get_size(pkey_.get()), 0));
        spki_ = write_spki(pkey_.get());
    }

    KeyKind kind() const override { return kind_; }
    unsigned bits() const override { return bits_; }
    const std::vector<uint8_t>& public_key_der() const override { return spki_; }

    size_t sign_into(SignAlgorithm alg, std::span<const uint8_t> digest, std::span<uint8_t> out) const override {
        check_sign_request(alg, kind_, modulus_bytes_, digest.size());
        check_signature_room(max_signature_bytes_, out);
        if (kind_ == KeyKind::Ed25519) return sign_ed25519(digest, out);
        const char* what = kind_ == KeyKind::Rsa ? "RSA sign failed: " : "ECDSA sign failed: ";
        // A context initialised for this algorithm is reused (no EVP_PKEY_CTX, no fetch, no
        // parameter setting per signature); each slot serves one thread at a time.
        SignSlot* slot = claim_slot();
        ossl::PkeyCtx fresh;
        EVP_PKEY_CTX* ctx = nullptr;
        if (slot != nullptr && slot->ctx && slot->alg == alg) {
            ctx = slot->ctx.get();
        } else {
            fresh = operation_context(pkey_.get());
            if (EVP_PKEY_sign_init(fresh.get()) <= 0 || !set_signature_params(fresh.get(), alg)) {
                release(slot);
                throw KeychainError(ErrorCode::Internal, what + openssl_error());
            }
            ctx = fresh.get();
        }
        size_t len = out.size();
        const bool ok = EVP_PKEY_sign(ctx, out.data(), &len, digest.data(), digest.size()) > 0;
        if (slot != nullptr) {
            if (!ok)
                slot->ctx.reset();  // a failed context is not trusted again
            else if (fresh) {
                slot->ctx = std::move(fresh);
                slot->alg = alg;
            }
            release(slot);
        }
        if (!ok) throw KeychainError(ErrorCode::Internal, what + openssl_error());
        return len;
    }

    SecretBytes decrypt(DecryptAlgorithm alg, std::span<const uint8_t> ct) const override {
        check_decrypt_request(kind_, modulus_bytes_, ct.size());
        const ossl::PkeyCtx ctx = operation_context(pkey_.get());
        const EVP_MD* md = alg == DecryptAlgorithm::RsaOaepSha1 ? EVP_sha1() : EVP_sha256();
        SecretBytes out(modulus_bytes_);
        size_t len = out.size();
        if (EVP_PKEY_decrypt_init(ctx.get()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) <= 0 ||
            EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ct.data(), ct.size()) <= 0) {
            // The reason stays out of the message: telling padding errors apart helps an attacker.
            ERR_clear_error();
            throw KeychainError(ErrorCode::BadRequest, "RSA-OAEP decryption failed");
        }
        out.truncate(len);
        return out;
    }

private:
    // Pure Ed25519 (RFC 8032): no digest is named and the whole message goes in one call, as
    // EVP_DigestSign requires for it. A context per call, as for the other keys.
    size_t sign_ed25519(std::span<const uint8_t> message, std::span<uint8_t> out) const {
        const ossl::MdCtx ctx(EVP_MD_CTX_new());
        size_t len = out.size();
        if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey_.get(),
                                          nullptr) != 1 ||
            EVP_DigestSign(ctx.get(), out.data(), &len, message.data(), message.size()) != 1)
            throw KeychainError(ErrorCode::Internal, "Ed25519 sign failed: " + openssl_error());
        return len;
    }

    // An EVP_PKEY_CTX may be used by one thread at a time; the EVP_PKEY under it by many. A few
    // slots cover the workers of a lane (and the loop); a signer that finds all of them busy
    // makes a context of its own for that signature, as every signature did before.
    struct SignSlot {
        std::atomic_flag busy = ATOMIC_FLAG_INIT;
        ossl::PkeyCtx ctx;  // initialised for `alg`, or null
        SignAlgorithm alg = SignAlgorithm::EcdsaSha256;
    };
    static constexpr size_t kSignSlots = 4;

    SignSlot* claim_slot() const {
        for (SignSlot& slot : slots_)
            if (!slot.busy.test_and_set(std::memory_order_acquire)) return &slot;
        return nullptr;
    }
    static void release(SignSlot* slot) {
        if (slot != nullptr) slot->busy.clear(std::memory_order_release);
    }

    ossl::Pkey pkey_;  // parsed once; read-only after construction, so signers may share it
    KeyKind kind_ = KeyKind::Rsa;
    unsigned bits_ = 0;
    size_t modulus_bytes_ = 0;
    size_t max_signature_bytes_ = 0;  // EVP_PKEY_get_size: DER ECDSA signatures are up to this
    std::vector<uint8_t> spki_;
    mutable SignSlot slots_[kSignSlots];  // after pkey_: the contexts go first
};

// One AES-256-GCM context per thread and direction, set up with the cipher once: an envelope
// operation re-keys it (EVP_*Init_ex2 without a cipher allocates nothing) instead of making and
// freeing a context and its provider state. After each use the key schedule is overwritten with
// an all-zero key, so no KEK outlives its operation here (FORGET leaves nothing behind).
class ThreadCipher {
public:
    ThreadCipher(const EVP_CIPHER* cipher, bool encrypt) : cipher_(cipher), encrypt_(encrypt) {}
    ThreadCipher(const ThreadCipher&) = delete;
    ThreadCipher& operator=(const ThreadCipher&) = delete;
    ~ThreadCipher() { scrub(); }

    // The context keyed for this operation, or null when OpenSSL fails.
    EVP_CIPHER_CTX* start(std::span<const uint8_t> key, std::span<const uint8_t> nonce) {
        if (!ctx_) {
            ctx_.reset(EVP_CIPHER_CTX_new());
            if (!ctx_ || init(cipher_, key.data(), nonce.data()) != 1) {
                ctx_.reset();
                return nullptr;
            }
            return ctx_.get();
        }
        if (init(nullptr, key.data(), nonce.data()) != 1) {
            ctx_.reset();
            return nullptr;
        }
        return ctx_.get();
    }
    // After every operation, failed or not.
    void scrub() noexcept {
        static constexpr unsigned char kZeroKey[32] = {};
        if (ctx_ && init(nullptr, kZeroKey, nullptr) != 1) {
            ctx_.reset();  // the free wipes (wipe_openssl_frees)
            ERR_clear_error();
        }
    }

private:
    int init(const EVP_CIPHER* c, const unsigned char* key, const unsigned char* iv) {
        return encrypt_ ? EVP_EncryptInit_ex2(ctx_.get(), c, key, iv, nullptr)
                        : EVP_DecryptInit_ex2(ctx_.get(), c, key, iv, nullptr);
    }
    const EVP_CIPHER* cipher_;
    bool encrypt_;
    ossl::CipherCtx ctx_;
};

// Scrubs the thread's context at the end of an operation, whichever way it ends.
struct ScrubOnExit {
    ThreadCipher& cipher;
    ~ScrubOnExit() { cipher.scrub(); }
};

// Sizes past INT_MAX do not fit OpenSSL's cipher calls; frames are far smaller.
int cipher_length(size_t n) {
    if (n > INT_MAX) throw KeychainError(ErrorCode::BadRequest, "AES-GCM input over 2 GiB");
    return static_cast<int>(n);
}

class OsslBackend final : public CryptoBackend {
public:
    OsslBackend()
        : secure_heap_bytes_(set_up_secure_heap()),
          name_("openssl-" + std::to_string(OPENSSL_version_major()) + "." +
                std::to_string(OPENSSL_version_minor())),
          sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)),
          aes256_gcm_(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr)) {
        if (!sha256_ || !aes256_gcm_)
            throw KeychainError(ErrorCode::Internal,
                                "OpenSSL has no SHA-256 or AES-256-GCM: " + openssl_error());
    }

    std::string_view name() const override { return name_; }

    std::unique_ptr<PrivateKey> parse_private_key(std::span<const uint8_t> in) const override {
        // A full heap makes the decoder fail as if the key were malformed: say what it is.
        if (secure_heap_bytes_ != 0 && CRYPTO_secure_used() + kSecureHeapPerKey > secure_heap_bytes_)
            throw KeychainError(ErrorCode::Internal,
                                "OpenSSL's secure heap is full (" +
                                    std::to_string(CRYPTO_secure_used()) + " of " +
                                    std::to_string(secure_heap_bytes_) +
                                    " bytes used): no room for another private key");
        ossl::Pkey pkey = decode_private_key(in);
        if (!pkey) throw KeychainError(ErrorCode::BadRequest, std::string(kUnparsedKey) + " (" +
                                                                  openssl_error() + ")");
        return std::make_unique<OsslPrivateKey>(std::move(pkey));
    }

    std::vector<std::vector<uint8_t>> parse_certificates(std::span<const uint8_t> in) const override {
        std::vector<std::vector<uint8_t>> out;
        if (!looks_like_pem(in)) {
            out.push_back(one_certificate(in));
            return out;
        }
        // As mbedTLS: every CERTIFICATE block is read; one that does not parse fails the chain.
        const ossl::Bio bio = memory_bio(in);
        ossl::PemBlock block;
        size_t failed = 0;
        std::string first_error;
        while (read_pem_block(bio.get(), block, 0, "certificate does not parse")) {
            if (std::string_view(block.name) != "CERTIFICATE") continue;
            const std::span<const uint8_t> der(block.data, static_cast<size_t>(block.size));
            size_t used = 0;
            if (!decode_certificate(der, &used)) {
                if (failed++ == 0) first_error = openssl_error();
                continue;
            }
            out.emplace_back(der.begin(), der.begin() + static_cast<std::ptrdiff_t>(used));
        }
        if (!out.empty() && failed != 0)
            throw KeychainError(ErrorCode::BadRequest,
                                std::to_string(failed) + " certificate(s) in the chain do not parse");
        if (out.empty())
            throw KeychainError(ErrorCode::BadRequest,
                                failed != 0 ? "certificate does not parse (" + first_error + ")"
                                            : std::string("no certificate found"));
        return out;
    }

    std::vector<uint8_t> certificate_public_key(std::span<const uint8_t> der) const override {
        const ossl::X509Cert cert = decode_certificate(der, nullptr);
        EVP_PKEY* pub = cert ? X509_get0_pubkey(cert.get()) : nullptr;
        if (pub == nullptr) {
            ERR_clear_error();
            throw KeychainError(ErrorCode::BadRequest, "certificate does not parse");
        }
        return write_spki(pub);
    }

    bool verify(std::span<const uint8_t> spki, SignAlgorithm alg, std::span<const uint8_t> digest,
                std::span<const uint8_t> sig) const override {
        const size_t want = sign_algorithm_digest_size(alg);
        if (want != 0 && digest.size() != want) return false;
        if (spki.size() > LONG_MAX) return false;
        const unsigned char* p = spki.data();
        const ossl::Pkey pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
        if (!pub || p != spki.data() + spki.size()) {
            ERR_clear_error();
            return false;
        }
        if (alg == SignAlgorithm::Ed25519 || EVP_PKEY_is_a(pub.get(), "ED25519") == 1)
            return alg == SignAlgorithm::Ed25519 && EVP_PKEY_is_a(pub.get(), "ED25519") == 1 &&
                   verify_ed25519(pub.get(), digest, sig);
        const bool rsa_key = EVP_PKEY_is_a(pub.get(), "RSA") == 1;
        if (rsa_key != sign_algorithm_is_rsa(alg) || (!rsa_key && !EVP_PKEY_is_a(pub.get(), "EC")))
            return false;
        // RFC 8017: an RSA signature is exactly k bytes; OpenSSL would take a shorter one.
        if (rsa_key && sig.size() != static_cast<size_t>(EVP_PKEY_get_size(pub.get()))) return false;
        const ossl::PkeyCtx ctx = operation_context(pub.get());
        const bool ok = EVP_PKEY_verify_init(ctx.get()) > 0 &&
                        set_signature_params(ctx.get(), alg) &&
                        EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(),
                                        digest.size()) == 1;
        ERR_clear_error();
        return ok;
    }

    void random(std::span<uint8_t> out) const override {
        // The private DRBG: this output becomes data keys.
        while (!out.empty()) {
            const size_t n = std::min<size_t>(out.size(), INT_MAX);
            if (RAND_priv_bytes(out.data(), static_cast<int>(n)) != 1) {
                ERR_clear_error();
                throw KeychainError(ErrorCode::Internal, "random generator failed");
            }
            out = out.subspan(n);
        }
    }

    void sha256(std::span<const uint8_t> in, uint8_t out[32]) const override {
        if (EVP_Digest(in.data(), in.size(), out, nullptr, sha256_.get(), nullptr) != 1)
            throw KeychainError(ErrorCode::Internal, "SHA-256 failed: " + openssl_error());
    }

    void aes256_gcm_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                            std::span<const uint8_t> aad, std::span<const uint8_t> pt,
                            std::span<uint8_t> ct, std::span<uint8_t> tag) const override {
        check_gcm_sizes(key, nonce, tag.size(), pt.size(), ct.size());
        thread_local ThreadCipher cipher(aes256_gcm_.get(), true);
        const ScrubOnExit scrub{cipher};
        EVP_CIPHER_CTX* const c = cipher.start(key, nonce);
        int n = 0;
        unsigned char final_block[16];
        OSSL_PARAM get_tag[] = {
            OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag.data(), tag.size()),
            OSSL_PARAM_construct_end()};
        // With a null output, EVP_EncryptUpdate takes AAD: empty inputs skip their call.
        const bool ok =
            c != nullptr &&
            (aad.empty() ||
             EVP_EncryptUpdate(c, nullptr, &n, aad.data(), cipher_length(aad.size())) == 1) &&
            (pt.empty() ||
             EVP_EncryptUpdate(c, ct.data(), &n, pt.data(), cipher_length(pt.size())) == 1) &&
            EVP_EncryptFinal_ex(c, final_block, &n) == 1 &&
            EVP_CIPHER_CTX_get_params(c, get_tag) == 1;
        if (!ok) throw KeychainError(ErrorCode::Internal, "AES-GCM failed: " + openssl_error());
    }

    bool aes256_gcm_decrypt(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                            std::span<const uint8_t> aad, std::span<const uint8_t> ct,
                            std::span<const uint8_t> tag, std::span<uint8_t> pt) const override {
        check_gcm_sizes(key, nonce, tag.size(), ct.size(), pt.size());
        thread_local ThreadCipher cipher(aes256_gcm_.get(), false);
        const ScrubOnExit scrub{cipher};
        EVP_CIPHER_CTX* const c = cipher.start(key, nonce);
        int n = 0;
        unsigned char final_block[16];
        OSSL_PARAM set_tag[] = {
            OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                              const_cast<uint8_t*>(tag.data()), tag.size()),
            OSSL_PARAM_construct_end()};
        const bool started =
            c != nullptr && EVP_CIPHER_CTX_set_params(c, set_tag) == 1 &&
            (aad.empty() ||
             EVP_DecryptUpdate(c, nullptr, &n, aad.data(), cipher_length(aad.size())) == 1) &&
            (ct.empty() ||
             EVP_DecryptUpdate(c, pt.data(), &n, ct.data(), cipher_length(ct.size())) == 1);
        if (!started) {
            secure_wipe(pt.data(), pt.size());
            throw KeychainError(ErrorCode::Internal, "AES-GCM failed: " + openssl_error());
        }
        // OpenSSL writes the plaintext before it checks the tag.
        if (EVP_DecryptFinal_ex(c, final_block, &n) != 1) {
            ERR_clear_error();
            secure_wipe(pt.data(), pt.size());
            return false;
        }
        return true;
    }

private:
    // `message` is the whole signed message (pure Ed25519). RFC 8032 signatures are 64 bytes.
    static bool verify_ed25519(EVP_PKEY* pub, std::span<const uint8_t> message,
                               std::span<const uint8_t> sig) {
        if (sig.size() != 64) return false;
        const ossl::MdCtx ctx(EVP_MD_CTX_new());
        const bool ok = ctx &&
                        EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pub,
                                                nullptr) == 1 &&
                        EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(),
                                         message.size()) == 1;
        ERR_clear_error();
        return ok;
    }

    // One certificate from the start of `der`; `used` (when given) gets the bytes it took.
    static ossl::X509Cert decode_certificate(std::span<const uint8_t> der, size_t* used) {
        if (der.size() > LONG_MAX) return {};
        const unsigned char* p = der.data();
        ossl::X509Cert cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
        if (used != nullptr) *used = static_cast<size_t>(p - der.data());
        return cert;
    }
    static std::vector<uint8_t> one_certificate(std::span<const uint8_t> der) {
        size_t used = 0;
        if (!decode_certificate(der, &used))
            throw KeychainError(ErrorCode::BadRequest,
                                "certificate does not parse (" + openssl_error() + ")");
        return {der.begin(), der.begin() + static_cast<std::ptrdiff_t>(used)};
    }

    size_t secure_heap_bytes_;  // 0: the heap is someone else's, of unknown size
    std::string name_;
    ossl::Md sha256_;  // fetched once: an implicit fetch per call is slow in OpenSSL 3
    ossl::Cipher aes256_gcm_;
};

}  // namespace

const CryptoBackend& openssl_crypto_backend() {
    static const OsslBackend backend;
    return backend;
}

bool wipe_openssl_frees() {
    return CRYPTO_set_mem_functions(plain_malloc, wiping_realloc, wiping_free) == 1;
}

void release_thread_crypto_state() { OPENSSL_thread_stop(); }

}  // namespace keychaind
