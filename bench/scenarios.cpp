// The measurement matrix: which rows each system gets.
#include "scenarios.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>

#include "agent_requests.h"
#include "inprocess_callers.h"
#include "keychaind_requests.h"
#include "pipelined_load.h"
#include "scenario_names.h"
#include "soft_token.h"
#include "threaded_calls.h"

namespace keychaind::bench {
namespace {

using namespace names;

struct SignCase {
    const char* scenario;
    const FileKey* key;
    SignAlgorithm alg;
};

std::shared_ptr<const PrivateKey> parse(const FileKey& k) {
    return crypto_backend().parse_private_key(
        std::span(reinterpret_cast<const uint8_t*>(k.pem.data()), k.pem.size()));
}

std::vector<uint8_t> key_id_bytes(const std::string& hex) {
    const auto id = KeyId::from_hex(hex);
    if (!id) throw std::runtime_error("bad key id " + hex);
    return {id->bytes().begin(), id->bytes().end()};
}

constexpr const char* kP11KitClient = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

Row socket_row(const char* scenario, const char* system, int connections, int depth,
               int client_threads) {
    Row r;
    r.scenario = scenario;
    r.system = system;
    r.connections = connections;
    r.depth = depth;
    r.threads = std::min(client_threads, connections);
    return r;
}

Row thread_row(const char* scenario, const char* system, int threads) {
    Row r;
    r.scenario = scenario;
    r.system = system;
    r.threads = threads;
    return r;
}

}  // namespace

void add_in_process(BenchRun& run, const BenchKeys& keys) {
    const Timing timing = run.options().timing;
    for (const SignCase& c : {SignCase{kSignEcFile, &keys.ec(), SignAlgorithm::EcdsaSha256},
                              SignCase{kSignRsaFile, &keys.rsa(), SignAlgorithm::RsaPkcs1Sha256}}) {
        for (const int t : run.options().threads) {
            // A key object per thread: the backend's own per-key lock never serializes threads.
            run.add(thread_row(c.scenario, kInProcess, t), [t, key = *c.key, alg = c.alg, timing] {
                return run_threads(
                    t, [&](int) { return backend_sign_caller(parse(key), alg, 32); }, timing);
            });
        }
        // One key object shared by the threads, as the daemon holds it.
        run.add(thread_row(c.scenario, kInProcessShared, 2),
                [shared = parse(*c.key), alg = c.alg, timing] {
                    return run_threads(
                        2, [&](int) { return backend_sign_caller(shared, alg, 32); }, timing);
                });
    }
}

void add_keychaind(BenchRun& run, const KeychaindService& daemon, const BenchKeys& keys,
                   const test::SoftToken& token) {
    const auto& o = run.options();
    const auto kek = keys.kek_id().bytes();
    const auto wrapped = wrapped_data_key(daemon.socket(), kek);
    using Requests = std::shared_ptr<const KeychaindRequests>;
    const auto make = [](KeychaindRequests r) {
        return std::make_shared<const KeychaindRequests>(std::move(r));
    };
    const std::vector<std::pair<const char*, Requests>> cases = {
        {kSignEcFile,
         make(KeychaindRequests::sign(keys.ec().id.bytes(), SignAlgorithm::EcdsaSha256, 32))},
        {kSignRsaFile,
         make(KeychaindRequests::sign(keys.rsa().id.bytes(), SignAlgorithm::RsaPkcs1Sha256, 32))},
        {kSignEcToken, make(KeychaindRequests::sign(key_id_bytes(token.ec_key_id()),
                                                    SignAlgorithm::EcdsaSha256, 32))},
        {kSignRsaToken, make(KeychaindRequests::sign(key_id_bytes(token.rsa_key_id()),
                                                     SignAlgorithm::RsaPkcs1Sha256, 32))},
        {kUnwrap, make(KeychaindRequests::unwrap(wrapped))},
        {kGenerateDataKey, make(KeychaindRequests::generate_data_key(kek))},
    };
    for (const auto& [scenario, requests] : cases)
        for (const int conns : o.connections)
            for (const int depth : o.depths) {
                const LoadShape shape{conns, depth, o.client_threads};
                run.add(socket_row(scenario, kKeychaind, conns, depth, o.client_threads),
                        [requests, shape, socket = daemon.socket(), pid = daemon.pid(),
                         timing = o.timing] {
                            return run_pipelined(*requests, socket, shape, timing, pid);
                        });
            }
}

void add_ssh_agent(BenchRun& run, const SshAgentService& agent) {
    const auto& o = run.options();
    const auto ids = agent_identities(agent.socket());
    const auto by_type = [&](const std::string& type) -> const AgentIdentity& {
        for (const auto& id : ids)
            if (id.key_type == type) return id;
        throw std::runtime_error("ssh-agent does not hold a " + type + " key");
    };
    const auto ec = std::make_shared<const AgentSignRequests>(by_type("ecdsa-sha2-nistp256"), 0);
    const auto rsa = std::make_shared<const AgentSignRequests>(by_type("ssh-rsa"),
                                                               AgentSignRequests::kRsaSha2_256);
    ec->check_signs(agent.socket());
    rsa->check_signs(agent.socket());
    for (const auto& [scenario, requests] :
         {std::pair{kSignEcFile, ec}, std::pair{kSignRsaFile, rsa}})
        for (const int conns : o.connections) {
            if (conns > 8) continue;  // one thread serves them all; 64 adds nothing but time
            for (const int depth : o.depths) {
                const LoadShape shape{conns, depth, o.client_threads};
                run.add(socket_row(scenario, kSshAgent, conns, depth, o.client_threads),
                        [requests, shape, socket = agent.socket(), pid = agent.pid(),
                         timing = o.timing] {
                            return run_pipelined(*requests, socket, shape, timing, pid);
                        });
            }
        }
}

void add_softhsm(BenchRun& run, const test::SoftToken& token) {
    const auto& o = run.options();
    const std::vector<uint8_t> digest(32, 0x5c);
    for (const auto& [scenario, label, mech, input] :
         {std::tuple{kSignEcToken, test::SoftToken::kEcLabel, CKM_ECDSA, digest},
          std::tuple{kSignRsaToken, test::SoftToken::kRsaLabel, CKM_RSA_PKCS,
                     sha256_digest_info()}})
        for (const int t : o.threads)
            run.add(thread_row(scenario, kSoftHsm, t),
                    [&token, t, label = std::string(label), mech = mech, input = input,
                     timing = o.timing] {
                        return run_threads(
                            t,
                            [&](int) {
                                return pkcs11_sign_caller(token.open_session(), label, mech, input);
                            },
                            timing);
                    });
}

void add_pkcs11_modules(BenchRun& run, const P11KitServer& server, const KeychaindService& daemon,
                        const test::SoftToken& token) {
    const auto& o = run.options();
    // Both modules read where to go from the environment when they initialize.
    setenv("P11_KIT_SERVER_ADDRESS", server.address().c_str(), 1);
    setenv("KEYCHAIND_SOCKET", daemon.socket().c_str(), 1);
    const std::vector<uint8_t> digest(32, 0x5c);
    for (const int t : {1, 8}) {
        run.add(socket_row(kPkcs11Sign, kP11KitServer, t, 1, t),
                [&token, t, digest, pid = server.pid(), timing = o.timing] {
                    return run_threads(
                        t,
                        [&](int) {
                            return pkcs11_sign_caller(
                                std::make_unique<test::Pkcs11Session>(token.label(), token.pin(),
                                                                      kP11KitClient),
                                test::SoftToken::kEcLabel, CKM_ECDSA, digest);
                        },
                        timing, pid);
                });
        run.add(socket_row(kPkcs11Sign, kOurModule, t, 1, t),
                [t, digest, module = o.pkcs11_module, pid = daemon.pid(), timing = o.timing] {
                    return run_threads(
                        t,
                        [&](int) {
                            // The module's one token is "keychaind"; no login: the daemon's policy
                            // decides.
                            return pkcs11_sign_caller(
                                std::make_unique<test::Pkcs11Session>("keychaind", "", module),
                                test::SoftToken::kEcLabel, CKM_ECDSA, digest);
                        },
                        timing, pid);
                });
    }
}

void measure_memory(BenchRun& run, const std::string& dir, KeychaindService& daemon,
                    const BenchKeys& keys, const test::SoftToken& token) {
    const auto& o = run.options();
    const auto kek = keys.kek_id().bytes();
    // Weighted like a server's day: mostly envelope operations, some ECDSA, a little RSA.
    const auto wrapped = wrapped_data_key(daemon.socket(), kek);
    std::vector<KeychaindRequests> parts;
    for (int i = 0; i < 5; ++i) parts.push_back(KeychaindRequests::unwrap(wrapped));
    for (int i = 0; i < 3; ++i) parts.push_back(KeychaindRequests::generate_data_key(kek));
    for (int i = 0; i < 2; ++i)
        parts.push_back(
            KeychaindRequests::sign(keys.ec().id.bytes(), SignAlgorithm::EcdsaSha256, 32));
    parts.push_back(
        KeychaindRequests::sign(key_id_bytes(token.ec_key_id()), SignAlgorithm::EcdsaSha256, 32));
    parts.push_back(
        KeychaindRequests::sign(keys.rsa().id.bytes(), SignAlgorithm::RsaPkcs1Sha256, 32));
    const auto mixed = KeychaindRequests::mixed(std::move(parts));
    const LoadShape shape{8, 8, o.client_threads};

    Timing warm;
    warm.total_ops = std::max<uint64_t>(1000, o.soak_ops / 20);
    run_pipelined(mixed, daemon.socket(), shape, warm, daemon.pid());
    Row before;
    before.scenario = kRssBefore;
    before.system = kKeychaind;
    before.rss_kib = rss_kib(daemon.pid());
    run.add_memory(before);

    Timing soak;
    soak.total_ops = o.soak_ops;
    Row mixed_row =
        socket_row(kMixed, kKeychaind, shape.connections, shape.depth, shape.client_threads);
    mixed_row.scenario += " " + std::to_string(o.soak_ops) + " ops";
    try {
        mixed_row.summary = run_pipelined(mixed, daemon.socket(), shape, soak, daemon.pid());
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("the mixed run failed: ") + e.what());
    }
    mixed_row.runs = 1;
    run.rows().push_back(mixed_row);
    Row after = before;
    after.scenario = kRssAfter;
    after.rss_kib = rss_kib(daemon.pid());
    run.add_memory(after);
    daemon.stop();

    {
        const std::string idle_dir = dir + "/idle";
        mkdir(idle_dir.c_str(), 0700);
        KeychaindService idle(o.keychaind_binary, idle_dir, {});
        keys_present(idle.socket());
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        Row r;
        r.scenario = kRssIdle;
        r.system = kKeychaind;
        r.rss_kib = rss_kib(idle.pid());
        run.add_memory(r);
    }
    {
        const std::string many_dir = dir + "/many";
        mkdir(many_dir.c_str(), 0700);
        write_aes_key_dir(many_dir + "/keys", o.rss_keys);
        KeychaindConfig config;
        config.key_dir = many_dir + "/keys";
        KeychaindService many(o.keychaind_binary, many_dir, config);
        many.wait_for_keys(static_cast<uint32_t>(o.rss_keys), 60);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        Row r;
        r.scenario = std::string(kRssManyKeys) + " (" + std::to_string(o.rss_keys) + ")";
        r.system = kKeychaind;
        r.rss_kib = rss_kib(many.pid());
        run.add_memory(r);
    }
}

}  // namespace keychaind::bench
