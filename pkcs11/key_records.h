// KeyRecord: what the daemon says about one RSA or EC key, fetched and parsed once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "certificate_fields.h"
#include "daemon_link.h"
#include "public_key_parts.h"

namespace keychaind::pkcs11 {

struct KeyRecord {
    ListedKey listed;
    std::vector<uint8_t> id;  // the key id's bytes (CKA_ID)
    std::vector<uint8_t> spki;
    PublicKeyParts public_key;
    // Certificates that parse, leaf first, each with its fields.
    std::vector<std::vector<uint8_t>> certificates;
    std::vector<CertificateFields> certificate_fields;
};
using KeyRecords = std::vector<std::shared_ptr<const KeyRecord>>;

// LIST_KEYS, then GET_PUBLIC for each RSA or EC key not already in `known` with the same label,
// usages and sources (a key's public half never changes: its id is the hash of it). AES keys have
// no PKCS#11 object here. A key that vanishes or is refused between the two requests is left
// out; any other daemon failure throws DaemonError.
KeyRecords fetch_key_records(DaemonLink& link, const KeyRecords& known);

// The record of one listed key from GET_PUBLIC's answer; nullptr (and a debug line) when the
// daemon's data does not make sense (an id that is not hex, an SPKI that does not parse or is not
// of the listed kind). A certificate that does not parse is left out.
std::shared_ptr<const KeyRecord> make_key_record(const ListedKey& listed, PublicKeyAnswer answer);

// Hex digits -> bytes; empty for anything that is not an even count of hex digits.
std::vector<uint8_t> bytes_from_hex(const std::string& hex);

}  // namespace keychaind::pkcs11
