// The soak's request mix and the check of every reply.
#include "client_load.h"

#include <algorithm>

namespace keychaind::soak {
namespace {

constexpr size_t kDigestBytes = 32;

std::vector<uint8_t> random_digest(std::mt19937_64& rng) {
    std::vector<uint8_t> d(kDigestBytes);
    for (auto& b : d) b = static_cast<uint8_t>(rng());
    return d;
}

}  // namespace

ClientLoad::ClientLoad(const std::string& socket, const SoakKeys& keys, unsigned index, SoakTally& tally)
    : client_(socket), keys_(keys), index_(index), tally_(tally), rng_(0x50a4u + index), ec_(keys.ec_spki),
      rsa_(keys.rsa_spki) {
    for (const auto& c : keys.churn_files) churn_ec_.emplace_back(c.spki);
}

void ClientLoad::run(uint64_t ops) {
    // Out of 100: ECDSA 25, RSA 5 (a tenth of ECDSA's rate), ECDSA with a churn key 10, data key
    // round trips with a fixed KEK 25 and with a churn KEK 10, LIST_KEYS 10, STATUS 15.
    for (uint64_t done = 0; done < ops;) {
        auto pick = rng_() % 100;
        if (ops - done == 1 && pick >= 30 && pick < 75) pick = 99;  // no room for a two-request round trip
        if (pick < 25) {
            done += sign("ec", KC_SIGN_ECDSA_SHA256, ec_, false);
        } else if (pick < 30) {
            const int alg = (rng_() & 1) != 0 ? KC_SIGN_RSA_PSS_SHA256 : KC_SIGN_RSA_PKCS1_SHA256;
            done += sign("rsa", alg, rsa_, false);
        } else if (pick < 40) {
            const size_t i = rng_() % churn_ec_.size();
            done += sign(keys_.churn_files[i].label, KC_SIGN_ECDSA_SHA256, churn_ec_[i], true);
        } else if (pick < 65) {
            done += data_key_round_trip(keys_.keks[rng_() % keys_.keks.size()], false);
        } else if (pick < 75) {
            done += data_key_round_trip(keys_.churn_provided[rng_() % keys_.churn_provided.size()].label, true);
        } else if (pick < 85) {
            done += list_keys();
        } else {
            done += status();
        }
    }
}

void ClientLoad::failed(const keychain::Error& e, const std::string& what, bool churn) {
    if (churn && e.code() == KC_ERR_KEY_NOT_PRESENT)
        tally_.expected_error(e.code());
    else
        tally_.wrong("client " + std::to_string(index_) + ": " + what + ": " + e.what());
}

uint64_t ClientLoad::sign(const std::string& label, int alg, const PublicKeyCheck& check, bool churn) {
    const auto digest = random_digest(rng_);
    try {
        const auto sig = client_.sign("label:" + label, alg, digest);
        if (check.verifies(alg, digest, sig))
            tally_.ok();
        else
            tally_.wrong("client " + std::to_string(index_) + ": SIGN with " + label +
                         " returned a signature that does not verify with its public key");
    } catch (const keychain::Error& e) {
        failed(e, "SIGN with " + label, churn);
    }
    return 1;
}

uint64_t ClientLoad::data_key_round_trip(const std::string& kek, bool churn) {
    const std::string context = "soak:" + std::to_string(index_) + ":" + std::to_string(sequence_++);
    keychain::DataKey generated;
    try {
        generated = client_.generate_data_key("label:" + kek, context);
        if (generated.key.size() != 32) {
            tally_.wrong("GENERATE_DATA_KEY with " + kek + " returned a " + std::to_string(generated.key.size()) +
                         "-byte data key");
            return 1;
        }
        tally_.ok();
    } catch (const keychain::Error& e) {
        failed(e, "GENERATE_DATA_KEY with " + kek, churn);
        return 1;
    }
    try {
        const auto unwrapped = client_.unwrap(generated.wrapped, context);
        if (unwrapped.size() == generated.key.size() &&
            std::equal(unwrapped.data(), unwrapped.data() + unwrapped.size(), generated.key.data()))
            tally_.ok();
        else
            tally_.wrong("client " + std::to_string(index_) + ": UNWRAP under " + kek +
                         " returned another key than GENERATE_DATA_KEY made");
    } catch (const keychain::Error& e) {
        failed(e, "UNWRAP under " + kek, churn);
    }
    return 2;
}

uint64_t ClientLoad::list_keys() {
    try {
        const auto keys = client_.list_keys();
        const auto has = [&](const std::string& label, int kind) {
            return std::any_of(keys.begin(), keys.end(),
                               [&](const keychain::KeyInfo& k) { return k.label == label && k.kind == kind && k.present; });
        };
        bool fixed_present = has("ec", KC_KIND_EC_P256) && has("rsa", KC_KIND_RSA);
        for (const auto& kek : keys_.keks) fixed_present = fixed_present && has(kek, KC_KIND_AES256);
        if (!fixed_present || keys.size() < keys_.fixed_count() ||
            keys.size() > keys_.fixed_count() + keys_.churn_count())
            tally_.wrong("client " + std::to_string(index_) + ": LIST_KEYS listed " + std::to_string(keys.size()) +
                         " keys, or lacked a fixed one");
        else
            tally_.ok();
    } catch (const keychain::Error& e) {
        failed(e, "LIST_KEYS", false);
    }
    return 1;
}

uint64_t ClientLoad::status() {
    try {
        const auto s = client_.status();
        if (s.locked || s.key_count < keys_.fixed_count() || s.key_count > keys_.fixed_count() + keys_.churn_count())
            tally_.wrong("client " + std::to_string(index_) + ": STATUS says " + std::to_string(s.key_count) +
                         " keys, locked " + std::to_string(s.locked));
        else
            tally_.ok();
    } catch (const keychain::Error& e) {
        failed(e, "STATUS", false);
    }
    return 1;
}

}  // namespace keychaind::soak
