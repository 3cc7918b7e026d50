// Fetching key records from the daemon and parsing their public parts.
#include "key_records.h"

#include <unordered_map>

#include "module_log.h"

namespace keychaind::pkcs11 {
namespace {

// Kinds with a PKCS#11 object here; any other (AES, Ed25519 until CKM_EDDSA exists) is skipped.
bool is_asymmetric(uint8_t kind) {
    return kind == KC_KIND_RSA || kind == KC_KIND_EC_P256 || kind == KC_KIND_EC_P384;
}

bool same_listing(const ListedKey& a, const ListedKey& b) {
    return a.id_hex == b.id_hex && a.label == b.label && a.kind == b.kind && a.bits == b.bits &&
           a.usages == b.usages && a.sources == b.sources;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::vector<uint8_t> bytes_from_hex(const std::string& hex) {
    if (hex.empty() || hex.size() % 2 != 0) return {};
    std::vector<uint8_t> out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_value(hex[2 * i]);
        const int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return {};
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return out;
}

std::shared_ptr<const KeyRecord> make_key_record(const ListedKey& listed, PublicKeyAnswer answer) {
    auto r = std::make_shared<KeyRecord>();
    r->listed = listed;
    r->id = bytes_from_hex(listed.id_hex);
    if (r->id.empty()) {
        log_debug("key '" + listed.label + "': the id '" + listed.id_hex + "' is not hex; skipped");
        return nullptr;
    }
    try {
        r->public_key = parse_public_key(answer.spki);
    } catch (const std::exception& e) {
        log_debug("key " + listed.id_hex + ": " + e.what() + "; skipped");
        return nullptr;
    }
    const bool rsa = listed.kind == KC_KIND_RSA;
    if (rsa != (r->public_key.family == KeyFamily::Rsa)) {
        log_debug("key " + listed.id_hex + ": its public key is not of its listed kind; skipped");
        return nullptr;
    }
    r->spki = std::move(answer.spki);
    for (size_t i = 0; i < answer.certificates.size(); ++i) {
        try {
            r->certificate_fields.push_back(read_certificate_fields(answer.certificates[i]));
            r->certificates.push_back(std::move(answer.certificates[i]));
        } catch (const std::exception& e) {
            log_debug("key " + listed.id_hex + " certificate " + std::to_string(i) + ": " +
                      e.what() + "; not shown");
        }
    }
    return r;
}

KeyRecords fetch_key_records(DaemonLink& link, const KeyRecords& known) {
    std::unordered_map<std::string, std::shared_ptr<const KeyRecord>> by_id;
    for (const auto& k : known) by_id.emplace(k->listed.id_hex, k);
    KeyRecords out;
    for (const ListedKey& listed : link.list_keys()) {
        if (!is_asymmetric(listed.kind)) continue;
        std::shared_ptr<const KeyRecord> record;
        if (const auto it = by_id.find(listed.id_hex);
            it != by_id.end() && same_listing(it->second->listed, listed))
            record = it->second;
        if (!record) {
            try {
                record = make_key_record(listed, link.get_public(listed.id_hex));
            } catch (const DaemonError& e) {
                if (!e.key_gone() && e.code() != KC_ERR_DENIED && e.code() != KC_ERR_UNSUPPORTED)
                    throw;
                log_debug(std::string("key ") + listed.id_hex + " left out: " + e.what());
            }
        }
        if (record) out.push_back(std::move(record));
    }
    return out;
}

}  // namespace keychaind::pkcs11
