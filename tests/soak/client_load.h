// ClientLoad: one soak client on its own connection, making mixed requests and checking each reply.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "keychain/client.hpp"
#include "signature_check.h"
#include "soak_keys.h"
#include "soak_tally.h"

namespace keychaind::soak {

class ClientLoad {
public:
    ClientLoad(const std::string& socket, const SoakKeys& keys, unsigned index, SoakTally& tally);
    // Makes `ops` requests (GENERATE_DATA_KEY then UNWRAP counts two) on the same connection.
    void run(uint64_t ops);

private:
    uint64_t sign(const std::string& label, int alg, const PublicKeyCheck& check, bool churn);
    uint64_t data_key_round_trip(const std::string& kek, bool churn);
    uint64_t list_keys();
    uint64_t status();
    // A churn key may be gone: KEY_NOT_PRESENT is the documented answer; anything else is wrong.
    void failed(const keychain::Error& e, const std::string& what, bool churn);

    keychain::Client client_;
    const SoakKeys& keys_;
    unsigned index_;
    SoakTally& tally_;
    std::mt19937_64 rng_;
    uint64_t sequence_ = 0;
    PublicKeyCheck ec_;
    PublicKeyCheck rsa_;
    std::vector<PublicKeyCheck> churn_ec_;
};

}  // namespace keychaind::soak
