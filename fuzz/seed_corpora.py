#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/ (docs/fuzzing.md). Run it again after a
format change; files it does not write (crash-* regressions, inputs found by fuzzing) stay.
Needs python3-cryptography (Debian 12) for keys, certificates and AES-GCM."""
import datetime, hashlib, os, re, struct, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")

def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)

# --- wire (docs/protocol.md) ---
OP = dict(STATUS=1, LIST_KEYS=2, GET_PUBLIC=3, SIGN=4, DECRYPT=5, GENERATE_DATA_KEY=6, WRAP=7,
          UNWRAP=8, REWRAP=9, DISCOVER=10, PROVIDE=11, FORGET=12, LOCK=13, UNLOCK=14, WAIT=15,
          SUBSCRIBE=16)
T = dict(KEY_ID=1, LABEL=2, ALGORITHM=3, DATA=4, CONTEXT=5, DATA_KEY=6, WRAPPED=7, TIMEOUT_MS=8,
         KEY_INFO=9, PASSPHRASE=15, ENCODED_KEY=16, EXPIRES=22, TARGET_KEY_ID=25, TARGET_LABEL=26,
         INCLUDE_ABSENT=33, PIN=35, TOKEN_URI=36)

def field(tag, value):
    value = value.encode() if isinstance(value, str) else value
    return struct.pack(">HI", T[tag] if isinstance(tag, str) else tag, len(value)) + value

def frame(op, rid, *fields, version=1):
    body = struct.pack(">BBI", version, OP[op] if isinstance(op, str) else op, rid) + b"".join(fields)
    return struct.pack(">I", len(body)) + body

KEK = bytes(range(32))  # the dispatch and envelope targets' KEK
KEK_ID = hashlib.sha256(b"keychaind key-id v1" + KEK).digest()[:16]

def kcw1(data_key, context=b"", nonce=bytes(12)):
    aad = b"KCW1" + KEK_ID + context
    ct = AESGCM(KEK).encrypt(nonce, data_key, aad)
    return b"KCW1" + KEK_ID + nonce + ct

WRAPPED = kcw1(bytes(range(100, 132)), b"db:users")

def requests():
    """(name, frame) for each request type, the keys named as the dispatch target holds them."""
    d32, d48, d64 = bytes(32), bytes(range(48)), bytes(range(64))
    r = [
        ("status", frame("STATUS", 7)),
        ("list-keys", frame("LIST_KEYS", 1)),
        ("list-keys-absent", frame("LIST_KEYS", 2, field("INCLUDE_ABSENT", b"\x01"))),
        ("get-public-ec", frame("GET_PUBLIC", 3, field("LABEL", "ec"))),
        ("get-public-id", frame("GET_PUBLIC", 3, field("KEY_ID", KEK_ID))),
        ("sign-ecdsa-p256", frame("SIGN", 4, field("LABEL", "ec"), field("ALGORITHM", b"\x07"), field("DATA", d32))),
        ("sign-ecdsa-sha384", frame("SIGN", 4, field("LABEL", "ec"), field("ALGORITHM", b"\x08"), field("DATA", d48))),
        ("sign-rsa-pkcs1", frame("SIGN", 5, field("LABEL", "rsa"), field("ALGORITHM", b"\x01"), field("DATA", d32))),
        ("sign-rsa-pss512", frame("SIGN", 5, field("LABEL", "rsa"), field("ALGORITHM", b"\x06"), field("DATA", d64))),
        ("sign-rsa-raw", frame("SIGN", 5, field("LABEL", "rsa"), field("ALGORITHM", b"\x0a"), field("DATA", d48))),
        ("sign-wrong-size", frame("SIGN", 6, field("LABEL", "ec"), field("ALGORITHM", b"\x07"), field("DATA", d48))),
        ("decrypt-oaep", frame("DECRYPT", 8, field("LABEL", "rsa"), field("ALGORITHM", b"\x02"), field("DATA", bytes(256)))),
        ("generate-data-key", frame("GENERATE_DATA_KEY", 9, field("LABEL", "kek"), field("CONTEXT", "db:users"))),
        ("wrap", frame("WRAP", 10, field("KEY_ID", KEK_ID), field("DATA_KEY", bytes(32)))),
        ("unwrap", frame("UNWRAP", 11, field("WRAPPED", WRAPPED), field("CONTEXT", "db:users"))),
        ("unwrap-bad-context", frame("UNWRAP", 11, field("WRAPPED", WRAPPED), field("CONTEXT", "db:other"))),
        ("rewrap", frame("REWRAP", 12, field("WRAPPED", WRAPPED), field("CONTEXT", "db:users"), field("TARGET_LABEL", "kek"))),
        ("discover", frame("DISCOVER", 13)),
        ("provide-passphrase", frame("PROVIDE", 14, field("PASSPHRASE", "correct horse"), field("LABEL", "given"))),
        ("provide-encoded", frame("PROVIDE", 14, field("ENCODED_KEY", "D1AB499C9BE1F210BDB1F3A5B8C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8"), field("EXPIRES", struct.pack(">Q", 4102444800)))),
        ("provide-pin", frame("PROVIDE", 14, field("PIN", "1234"), field("TOKEN_URI", "pkcs11:token=web"))),
        ("forget", frame("FORGET", 15, field("LABEL", "ec"))),
        ("lock", frame("LOCK", 16, field("PASSPHRASE", "s3cret"))),
        ("unlock", frame("UNLOCK", 17, field("PASSPHRASE", "s3cret"))),
        ("wait", frame("WAIT", 18, field("LABEL", "later"), field("TIMEOUT_MS", struct.pack(">I", 100)))),
        ("subscribe", frame("SUBSCRIBE", 19)),
    ]
    return r

def wire_seeds():
    reqs = requests()
    for name, f in reqs:
        put("frame", name, b"\x00" + f)
        for peer in (0, 1, 2) if name in ("sign-ecdsa-p256", "provide-passphrase", "list-keys") else (0,):
            put("dispatch", f"{name}-peer{peer}", bytes([peer]) + f)
    all_frames = b"".join(f for _, f in reqs)
    put("frame", "pipelined-all", b"\x00" + all_frames)
    put("frame", "pipelined-in-3-byte-pieces", b"\x06" + all_frames)
    put("frame", "small-limit", b"\x01" + frame("SIGN", 1, field("DATA", bytes(300))))
    put("frame", "zero-length", b"\x00" + b"\x00\x00\x00\x00")
    put("frame", "bad-version", b"\x00" + frame("STATUS", 1, version=2))
    # LABEL claims 255 bytes, none follow.
    put("frame", "field-overrun", b"\x00" + struct.pack(">I", 12) + b"\x01\x01\x00\x00\x00\x01\x00\x02\x00\x00\x00\xff")
    put("frame", "truncated-field-header", b"\x00" + struct.pack(">I", 9) + b"\x01\x01\x00\x00\x00\x01\x00\x02\x00")
    nested = field("KEY_INFO", field("KEY_ID", KEK_ID) + field("LABEL", "kek") + field(0x12, struct.pack(">I", 256)))
    put("frame", "key-info-reply", b"\x00" + frame(0x82, 1, nested, nested))
    put("frame", "repeated-field", b"\x00" + frame("GET_PUBLIC", 1, field("LABEL", "a"), field("LABEL", "b")))
    put("frame", "bad-utf8-label", b"\x00" + frame("GET_PUBLIC", 1, field("LABEL", b"\xc0\xaf")))
    # Sequences: state carried from one request to the next.
    seq = lambda *names: b"".join(dict(reqs)[n] for n in names)
    put("dispatch", "seq-provide-list-forget", b"\x00" + seq("provide-passphrase", "list-keys-absent", "forget", "list-keys-absent"))
    put("dispatch", "seq-lock-sign-unlock", b"\x00" + seq("lock", "sign-ecdsa-p256", "status", "unlock", "sign-ecdsa-p256"))
    put("dispatch", "seq-forget-then-use", b"\x00" + seq("forget", "sign-ecdsa-p256", "get-public-ec", "list-keys-absent"))
    put("dispatch", "seq-envelope", b"\x00" + seq("generate-data-key", "wrap", "unwrap", "rewrap"))
    put("dispatch", "unknown-field", b"\x00" + frame("STATUS", 1, field("LABEL", "x")))
    put("dispatch", "unknown-opcode", b"\x00" + frame(0x42, 1))
    put("dispatch", "bad-key-id", b"\x00" + frame("GET_PUBLIC", 1, field("KEY_ID", b"\x01\x02\x03")))
    put("dispatch", "malformed-then-more", b"\x00" + struct.pack(">I", 3) + b"\x01\x01\x00" + dict(reqs)["status"])

def envelope_seeds():
    for name, key, ctx in (("32-byte", bytes(32), b""), ("context", bytes(range(100, 132)), b"db:users"),
                           ("1-byte", b"\x01", b"x"), ("1024-byte", bytes(1024), b"")):
        w = kcw1(key, ctx)
        put("envelope", name, bytes([len(ctx)]) + ctx + w)
    w = kcw1(bytes(32))
    put("envelope", "bad-tag", b"\x00" + w[:-1] + bytes([w[-1] ^ 1]))
    put("envelope", "other-kek", b"\x00" + w[:4] + bytes(16) + w[20:])
    put("envelope", "header-only", b"\x00" + w[:48])
    put("envelope", "bad-magic", b"\x00" + b"KCW2" + w[4:])

def identity(kind):
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz " + kind)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1000).not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2099, 1, 1)).sign(key, hashes.SHA256()))
    return key, cert

def pem(key, fmt):
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()

def keychain_file_seeds(ec_id, rsa_id):
    import json
    hexkey = "D1AB499C9BE1F210BDB1F3A5B8C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8"
    put("keychain_file", "4d-encoded-key", json.dumps({"encodedKey": hexkey}))
    put("keychain_file", "passphrase", json.dumps({"passPhrase": "the same passphrase", "name": "pp"}))
    put("keychain_file", "base64-key", json.dumps({"encodedKey": "0atJnJvh8hC9sfOluMbX6PkKGyw9Tl9gcYKTpLXG1+g="}))
    put("keychain_file", "array-extensions", json.dumps([
        {"encodedKey": hexkey, "name": "db-kek", "tethered": True, "expires": "2099-01-01T00:00:00Z"},
        {"passPhrase": "x", "expires": "2027-01-01T02:00:00.5+02:00"},
        {"encodedKey": hexkey[:-1]}, {"name": "no key"}, 42, {"encodedKey": "zz" * 32}]))
    for kind, (key, cert) in (("ec", ec_id), ("rsa", rsa_id)):
        cpem = cert.public_bytes(serialization.Encoding.PEM).decode()
        put("keychain_file", f"identity-{kind}-pkcs8", json.dumps({"privateKey": pem(key, serialization.PrivateFormat.PKCS8), "certificate": cpem, "name": kind}))
        put("keychain_file", f"identity-{kind}-legacy", json.dumps({"privateKey": pem(key, serialization.PrivateFormat.TraditionalOpenSSL)}))
    ek, ec_cert = ec_id
    put("keychain_file", "identity-wrong-cert", json.dumps({"privateKey": pem(ek, serialization.PrivateFormat.PKCS8), "certificate": rsa_id[1].public_bytes(serialization.Encoding.PEM).decode()}))
    put("keychain_file", "bad-expires", json.dumps({"encodedKey": hexkey, "expires": "2027-02-30T25:00:00Z"}))
    put("keychain_file", "deep", "[" * 70 + "]" * 70)
    put("keychain_file", "bad-utf8", b'{"passPhrase": "\xff"}')
    put("keychain_file", "not-json", "encodedKey = D1AB")
    put("keychain_file", "empty-array", "[]")
    put("keychain_file", "bom", "\ufeff" + json.dumps({"encodedKey": hexkey}))

def toml_blocks(path):
    text = open(path, encoding="utf-8").read()
    return re.findall(r"```toml\n(.*?)```", text, re.S)

def text_seeds():
    blocks = toml_blocks(os.path.join(ROOT, "docs/config.md"))
    for i, block in enumerate(blocks):
        put("config", f"docs-config-{i}", block)
    put("config", "docs-config-all", "".join(blocks))  # each block is its own sections
    for i, block in enumerate(toml_blocks(os.path.join(ROOT, "docs/policy.md"))):
        put("policy", f"docs-policy-{i}", block)
    put("config", "demo", open(os.path.join(ROOT, "examples/demo/keychaind.conf")).read())
    for f in ("examples/demo/policy.conf", "examples/policy/server-policy.conf"):
        put("policy", os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f), open(os.path.join(ROOT, f)).read())
    put("config", "bad-mode", '[daemon]\nsocket_mode = "0667"\n')
    put("config", "bad-toml", '[daemon\nsocket = "x"\n')
    put("config", "limits-range", "[limits]\nmax_frame_bytes = 99999999999\nmax_in_flight = -1\n")
    put("config", "empty", "")
    put("policy", "empty", "")
    put("policy", "peer-lists", '[[rule]]\nname = "r"\npeer = { uid = [0, 33], gid = 4242, exe = "/usr/sbin/nginx", unit = "nginx.service" }\n'
        'operations = "all"\nkeys = [{ label = "db/*" }, { id = "' + "f" * 64 + '" }, { source = "device" }, { token = "pkcs11:token=web" }]\nrate = 5\n'
        '[[device]]\nname = "d"\nmatch = { serial = "SanDisk_Ultra_4C53", fs_label = "KEYS" }\n')
    put("policy", "globs", '[[rule]]\nname = "g"\npeer = "any"\noperations = ["sign", "list"]\nkeys = [{ label = "*a*a*a*a*a*a*a*a*b" }, { label = "web-[0-9]?" }]\naction = "deny"\n')

def template(attrs, lie=0):
    """attrs: (type index or raw type, mode, payload); the pkcs11_attributes input encoding."""
    out = bytes([len(attrs)])
    for t, mode, payload in attrs:
        out += bytes([t]) if t < 0x80 else b"\xff" + struct.pack(">I", t)
        out += bytes([mode])
        if mode == 1:
            out += struct.pack(">H", payload)
        elif mode == 3:
            out += struct.pack(">H", len(payload)) + payload
    return out + bytes([lie])

def pkcs11_seeds(ec_id, rsa_id):
    CKO_PRIVATE_KEY = struct.pack("<Q", 3)
    find, get, add = b"\x00", b"\x01", b"\x02"
    put("pkcs11_attributes", "find-all", find + template([]))
    put("pkcs11_attributes", "find-private-keys", find + template([(0, 3, CKO_PRIVATE_KEY)]))
    put("pkcs11_attributes", "find-by-label", find + template([(3, 3, b"fuzz"), (1, 3, b"\x01")]))
    put("pkcs11_attributes", "find-null-with-length", find + template([(4, 1, 32)]))
    put("pkcs11_attributes", "find-too-many", find + template([(0, 0, None)], lie=0xFE))
    put("pkcs11_attributes", "find-null-array", find + template([], lie=0xFF) + b"\x05")
    for h in range(1, 9):
        put("pkcs11_attributes", f"get-sizes-{h}", get + bytes([h]) + template([(i, 0, None) for i in range(15)]))
        put("pkcs11_attributes", f"get-values-{h}", get + bytes([h]) + template([(i, 3, bytes(300)) for i in range(15)]))
    put("pkcs11_attributes", "get-small-buffers", get + b"\x01" + template([(8, 3, b"\x00"), (12, 3, bytes(4)), (4, 3, b"")]))
    put("pkcs11_attributes", "get-unavailable", get + b"\x02" + template([(18, 2, None), (0xFFFFFFFF, 0, None), (13, 2, None)]))
    for kind, (key, cert), k in (("ec", ec_id, 1), ("rsa", rsa_id, 0)):
        spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        der = cert.public_bytes(serialization.Encoding.DER)
        blob = add + bytes([k]) + struct.pack(">H", len(spki)) + spki + struct.pack(">H", len(der)) + der
        put("pkcs11_attributes", f"add-{kind}-then-find", blob + find + template([(4, 0, None)]) + get + b"\x09" + template([(i, 0, None) for i in range(15)]))
        put("pkcs11_attributes", f"add-{kind}-truncated-cert", add + bytes([k]) + struct.pack(">H", len(spki)) + spki + struct.pack(">H", 40) + der[:40])

def main():
    wire_seeds()
    envelope_seeds()
    ec_id, rsa_id = identity("ec"), identity("rsa")
    keychain_file_seeds(ec_id, rsa_id)
    text_seeds()
    pkcs11_seeds(ec_id, rsa_id)

if __name__ == "__main__":
    sys.exit(main())
