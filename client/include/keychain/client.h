/* libkeychain: the C ABI for talking to keychaind over its Unix socket (docs/client.md). */
#ifndef KEYCHAIN_CLIENT_H
#define KEYCHAIN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#if defined(KC_BUILDING_LIBRARY)
#define KC_API __attribute__((visibility("default")))
#else
#define KC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Return codes. 1..10 are the daemon's error codes (docs/protocol.md), with the same numbers;
 * codes from 100 on are found by the library itself. A future daemon may send a code in 11..99
 * that this header does not name; it is passed through unchanged.
 */
enum {
    KC_OK = 0,
    KC_ERR_NO_SUCH_KEY = 1,     /* no key with that id or label was ever in the keychain */
    KC_ERR_KEY_NOT_PRESENT = 2, /* the key was known but is gone */
    KC_ERR_DENIED = 3,          /* the daemon's policy refuses this caller */
    KC_ERR_BAD_REQUEST = 4,     /* malformed request, or a wrapped key that does not authenticate */
    KC_ERR_UNSUPPORTED = 5,     /* the key cannot do this */
    KC_ERR_TOKEN_ERROR = 6,     /* the HSM token failed */
    KC_ERR_LOCKED = 7,          /* the daemon is locked */
    KC_ERR_BUSY = 8,            /* a daemon quota was hit; retry later */
    KC_ERR_TIMEOUT = 9,         /* kc_wait ran out; kc_next_event saw no event in time */
    KC_ERR_INTERNAL = 10,       /* the daemon failed; details in its log */

    KC_ERR_CONNECT = 100,  /* cannot connect to the socket */
    KC_ERR_IO = 101,       /* the connection failed, closed, or the daemon did not answer in time */
    KC_ERR_PROTOCOL = 102, /* the daemon sent something that is not protocol version 1 */
    KC_ERR_ARGUMENT = 103, /* a bad argument (NULL pointer, oversized input, ...) */
    KC_ERR_NOMEM = 104     /* out of memory */
};

/* SIGN algorithms: the input is the digest (rsa-pkcs1-raw: a caller-built DigestInfo; ed25519:
 * the message itself). */
enum {
    KC_SIGN_RSA_PKCS1_SHA256 = 1,
    KC_SIGN_RSA_PKCS1_SHA384 = 2,
    KC_SIGN_RSA_PKCS1_SHA512 = 3,
    KC_SIGN_RSA_PSS_SHA256 = 4,
    KC_SIGN_RSA_PSS_SHA384 = 5,
    KC_SIGN_RSA_PSS_SHA512 = 6,
    KC_SIGN_ECDSA_SHA256 = 7,
    KC_SIGN_ECDSA_SHA384 = 8,
    KC_SIGN_ECDSA_SHA512 = 9,
    KC_SIGN_RSA_PKCS1_RAW = 10,
    KC_SIGN_ED25519 = 11 /* RFC 8032 pure Ed25519: the data is the message (1..16384 bytes) */
};

/* DECRYPT algorithms (MGF1 with the same hash, empty label). */
enum { KC_DECRYPT_RSA_OAEP_SHA1 = 1, KC_DECRYPT_RSA_OAEP_SHA256 = 2 };

/* Key kinds and usage bits, as on the wire. */
enum { KC_KIND_AES256 = 1, KC_KIND_RSA = 2, KC_KIND_EC_P256 = 3, KC_KIND_EC_P384 = 4, KC_KIND_ED25519 = 5 };
enum { KC_USAGE_SIGN = 1, KC_USAGE_DECRYPT = 2, KC_USAGE_WRAP = 4 };

/* Event types of a subscription. */
enum { KC_EVENT_ADDED = 1, KC_EVENT_REMOVED = 2 };

/*
 * A connection to keychaind. Not thread-safe: use one per thread (as with a socket), or guard
 * it with a lock. All calls on one client share one socket.
 */
typedef struct kc_client kc_client;

/* Bytes allocated by the library. kc_buffer_free wipes them before freeing. */
typedef struct kc_buffer {
    uint8_t* data;
    size_t len;
} kc_buffer;

typedef struct kc_status_info {
    char version[64];        /* daemon version, NUL-terminated (truncated if longer) */
    char backend[64];        /* crypto backend, e.g. "mbedtls-2.28" */
    uint32_t key_count;      /* keys present */
    int locked;              /* 1 when the daemon is locked */
    uint64_t uptime_seconds;
} kc_status_info;

typedef struct kc_key_info {
    char id[65];      /* 32 or 64 lowercase hex digits, NUL-terminated */
    char* label;      /* NUL-terminated, never NULL after a successful call */
    uint8_t kind;     /* KC_KIND_* */
    uint32_t bits;
    uint8_t usages;   /* KC_USAGE_* bits */
    char* sources;    /* every source ("file:/path#2", "provided:uid=0"), joined by '\n' */
    int tethered;     /* 1 if the key goes when its source goes */
    uint64_t expires; /* seconds since the epoch; 0 = no expiry */
    int present;      /* 0 for a key that is known but gone */
} kc_key_info;

typedef struct kc_public_info {
    char id[65];
    uint8_t kind;
    uint32_t bits;
    kc_buffer public_key;   /* SubjectPublicKeyInfo DER */
    kc_buffer* certificates; /* X.509 DER, leaf first */
    size_t certificate_count;
} kc_public_info;

typedef struct kc_event {
    int type;         /* KC_EVENT_ADDED or KC_EVENT_REMOVED */
    kc_key_info key;
    char* reason;     /* why a key was removed ("forget", "expired", ...); "" when none */
    uint32_t lost;    /* events dropped before this one because the client did not read them */
} kc_event;

/* --- connection ------------------------------------------------------------------------ */

/*
 * Connects to socket_path; NULL means $KEYCHAIND_SOCKET, else /run/keychaind/keychaind.sock.
 * On failure *out is NULL and kc_last_error(NULL) tells why (per thread).
 */
KC_API int kc_connect(const char* socket_path, kc_client** out);
KC_API void kc_close(kc_client* c);
/*
 * How long a call waits for the daemon when nothing arrives (kc_wait adds its own timeout).
 * 0 = forever. Default 60000 ms. When it runs out the call fails with KC_ERR_IO and the
 * socket is closed; the next call connects again.
 */
KC_API void kc_set_timeout(kc_client* c, uint32_t timeout_ms);
/* The daemon's message or the local reason for the last failed call on c ("" after success).
 * kc_last_error(NULL): the calling thread's last kc_connect failure. */
KC_API const char* kc_last_error(const kc_client* c);
/* A fixed description of a code ("no such key", "cannot connect to keychaind", ...). */
KC_API const char* kc_strerror(int code);
/* The protocol's name of a code ("NO_SUCH_KEY", ..., "CONNECT", "IO"); "UNKNOWN" otherwise. */
KC_API const char* kc_code_name(int code);

/* --- freeing what the library hands out ---------------------------------------------------- */

/* Wipes and frees; resets the struct to {NULL, 0}. NULL is ignored. */
KC_API void kc_buffer_free(kc_buffer* b);
/* Frees the strings inside one kc_key_info (a struct the caller owns, e.g. kc_wait's). */
KC_API void kc_key_info_clear(kc_key_info* info);
/* Frees an array from kc_list_keys and everything in it. */
KC_API void kc_key_info_free(kc_key_info* infos, size_t count);
KC_API void kc_public_info_clear(kc_public_info* info);
KC_API void kc_event_clear(kc_event* ev);

/*
 * --- operations ----------------------------------------------------------------------------
 * `key` selects a key: 32 or 64 hex digits = a key id; "label:NAME" = the label NAME; anything
 * else = a label. Output structs and buffers are filled only on KC_OK (and zeroed otherwise).
 */

KC_API int kc_status(kc_client* c, kc_status_info* out);
/* include_absent != 0 also lists keys that are known but gone. Free with kc_key_info_free. */
KC_API int kc_list_keys(kc_client* c, int include_absent, kc_key_info** out, size_t* count);
KC_API int kc_get_public(kc_client* c, const char* key, kc_public_info* out);
KC_API int kc_sign(kc_client* c, const char* key, int alg, const uint8_t* digest, size_t digest_len,
                   kc_buffer* signature);
KC_API int kc_decrypt(kc_client* c, const char* key, int alg, const uint8_t* ciphertext,
                      size_t ciphertext_len, kc_buffer* plaintext);

/* Envelope encryption (docs/envelope.md). context may be NULL (no context), at most 4096 bytes. */
KC_API int kc_generate_data_key(kc_client* c, const char* kek, const uint8_t* context, size_t context_len,
                                kc_buffer* data_key, kc_buffer* wrapped);
KC_API int kc_wrap(kc_client* c, const char* kek, const uint8_t* data_key, size_t data_key_len,
                   const uint8_t* context, size_t context_len, kc_buffer* wrapped);
KC_API int kc_unwrap(kc_client* c, const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context,
                     size_t context_len, kc_buffer* data_key);
KC_API int kc_rewrap(kc_client* c, const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context,
                     size_t context_len, const char* target_kek, kc_buffer* rewrapped);

/* Rescans the key sources; *added (may be NULL) = keys new to the keychain. */
KC_API int kc_discover(kc_client* c, uint32_t* added);

/* Admin operations. label may be NULL; expires = seconds since the epoch, 0 = never.
 * key_id_hex (may be NULL) receives the new key's id. */
KC_API int kc_provide_passphrase(kc_client* c, const char* passphrase, const char* label, uint64_t expires,
                                 char key_id_hex[65]);
/* encoded_key: 64 hex digits or the 44-character base64 form of a 32-byte key. */
KC_API int kc_provide_encoded_key(kc_client* c, const char* encoded_key, const char* label, uint64_t expires,
                                  char key_id_hex[65]);
/* A PKCS#11 token's user PIN: the daemon logs in to the token `token` names (a [[pkcs11.token]]
 * name, or a pkcs11: URI matching one) and loads its keys. *added (may be NULL) = keys new to the
 * keychain. KC_ERR_DENIED for a wrong PIN, KC_ERR_TOKEN_ERROR when the token is absent or fails. */
KC_API int kc_provide_pin(kc_client* c, const char* token, const char* pin, uint32_t* added);
/* key NULL forgets every key. *count (may be NULL) = keys dropped. */
KC_API int kc_forget(kc_client* c, const char* key, uint32_t* count);
/* password may be NULL; UNLOCK must give LOCK's password. */
KC_API int kc_lock(kc_client* c, const char* password);
KC_API int kc_unlock(kc_client* c, const char* password);

/* Blocks until the key is present (KC_OK) or timeout_ms passes (KC_ERR_TIMEOUT); 0 = the
 * daemon's default (30 s). out may be NULL; else free with kc_key_info_clear. */
KC_API int kc_wait(kc_client* c, const char* key, uint32_t timeout_ms, kc_key_info* out);

/* Subscribes c to key added/removed events; other calls on c keep working meanwhile. */
KC_API int kc_subscribe(kc_client* c);
/* The next event: waits up to timeout_ms (-1 = forever, 0 = only what already arrived);
 * KC_ERR_TIMEOUT if none came. Free with kc_event_clear. If the connection was lost the
 * subscription is gone: KC_ERR_IO, then call kc_subscribe again. */
KC_API int kc_next_event(kc_client* c, int timeout_ms, kc_event* out);

/*
 * --- pipelined batches ----------------------------------------------------------------------
 * Items are numbered from 0 in the order they were added. kc_batch_run sends them all on c's
 * socket without waiting for each reply (at most 64 in flight), matches the replies (which
 * may come in any order) by request id, and stores each item's result. It returns KC_OK when
 * every item got an answer (each may still be an error), or the local error that stopped the
 * run (the unanswered items then carry it). A batch may be run again; results are replaced.
 */
typedef struct kc_batch kc_batch;

KC_API kc_batch* kc_batch_new(void);
/* Wipes the results and frees the batch. NULL is ignored. */
KC_API void kc_batch_free(kc_batch* b);
KC_API size_t kc_batch_size(const kc_batch* b);
/* Each add returns KC_OK and the item's number in *index (may be NULL), or an error. */
KC_API int kc_batch_add_sign(kc_batch* b, const char* key, int alg, const uint8_t* digest, size_t digest_len,
                             size_t* index);
KC_API int kc_batch_add_unwrap(kc_batch* b, const uint8_t* wrapped, size_t wrapped_len, const uint8_t* context,
                               size_t context_len, size_t* index);
KC_API int kc_batch_add_generate_data_key(kc_batch* b, const char* kek, const uint8_t* context,
                                          size_t context_len, size_t* index);
KC_API int kc_batch_run(kc_client* c, kc_batch* b);
/* Item i's code; on KC_OK, out (may be NULL) receives a copy of its result: the signature, the
 * unwrapped data key, or the generated data key. KC_ERR_ARGUMENT for i out of range. */
KC_API int kc_batch_result(const kc_batch* b, size_t i, kc_buffer* out);
/* The wrapped form of a generate item's data key. */
KC_API int kc_batch_result_wrapped(const kc_batch* b, size_t i, kc_buffer* out);
/* Item i's error message ("" when it succeeded or has not run). */
KC_API const char* kc_batch_message(const kc_batch* b, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* KEYCHAIN_CLIENT_H */
