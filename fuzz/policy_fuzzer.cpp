// Fuzz target: the policy parser (policy/policy_file.cpp) and, for a policy that parses, its
// decisions for a few peers on every operation and a few keys, and its device rules.
#include "fuzz_input.h"
#include "policy/policy.h"

using namespace keychaind::policy;

namespace {

const std::vector<Peer>& peers() {
    static const std::vector<Peer> p = {
        {0, 0, 1, {0}, "/usr/sbin/keychainctl", ""},
        {33, 33, 100, {33, 4242}, "/usr/sbin/nginx", "nginx.service"},
        {1000, 1000, 200, {}, "", "user@1000.service"},
    };
    return p;
}

const std::vector<KeyFacts>& keys() {
    static const std::vector<KeyFacts> k = {
        {"0123456789abcdef0123456789abcdef", "web-tls", {"file:/etc/keychaind/keys/web.4DKeyChain"}},
        {std::string(64, 'f'), "db/kek*", {"device:SERIAL42/1234-ABCD/keys.4DKeyChain", "provided:uid=0"}},
        {std::string(32, '0'), "", {"token:pkcs11:token=web;object=tls"}},
    };
    return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::shared_ptr<const Policy> policy;
    try {
        policy = Policy::parse(keychaind::fuzz::as_text({data, size}), "/etc/keychaind/policy.conf");
    } catch (const PolicyError&) {
        return 0;
    }
    for (const Peer& peer : peers()) {
        const Policy::PeerView view = Policy::view_for(policy, peer);
        for (size_t o = 0; o < kOperationCount; ++o) {
            const auto op = static_cast<Operation>(o);
            (void)view.may_ever(op);
            if (!is_key_operation(op)) {
                (void)view.decide(op, nullptr, true);
                continue;
            }
            for (const KeyFacts& key : keys()) (void)view.decide(op, &key, true);
        }
    }
    (void)policy->device_permit({"0781", "5581", "SanDisk_Ultra_4C53", "4C53", "1234-ABCD", "KEYS"});
    (void)policy->device_permit({});
    return 0;
}
