// Integration: many clients at once, each pipelining, all answered correctly.
#include <catch2/catch.hpp>
#include <atomic>
#include <nlohmann/json.hpp>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "core/crypto_backend.h"
#include "core/error.h"
#include "daemon_fixture.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::test;
using wire::Opcode;
using wire::Tag;

TEST_CASE("100 concurrent clients with pipelined requests all get correct replies", "[integration]") {
    const auto p256 = make_identity(KeyKind::EcP256);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "kek"}, {"encodedKey", std::string(64, 'e')}});
    j.push_back({{"name", "ec"}, {"privateKey", p256.key_pem_pkcs8}});
    KeysDaemon d(j.dump());
    auto pub = request(d.socket(), std::move(req(Opcode::GetPublic).str(Tag::Label, "ec")));
    const auto spki_span = *pub.msg.get(Tag::PublicKey);
    const std::vector<uint8_t> spki(spki_span.begin(), spki_span.end());

    constexpr int kClients = 100;
    constexpr uint32_t kDepth = 16;
    std::atomic<int> failures{0};
    std::atomic<int> correct{0};
    std::mutex first_failure_mu;
    std::string first_failure;
    // Generous: 3,200 requests from 100 threads may share the CPUs with a loaded CI machine.
    constexpr auto kReplyTimeout = std::chrono::seconds(60);
    std::vector<std::thread> threads;
    for (int t = 0; t < kClients; ++t) {
        threads.emplace_back([&, t] {
            try {
                RawClient c(d.socket());
                // Each client first wraps its own data keys, then pipelines UNWRAPs and SIGNs.
                std::map<uint32_t, std::vector<uint8_t>> expected_key;
                std::map<uint32_t, std::vector<uint8_t>> digest_of;
                std::map<uint32_t, std::vector<uint8_t>> wrapped_of;
                for (uint32_t i = 0; i < kDepth; ++i) {
                    auto g = req(Opcode::GenerateDataKey, i);
                    g.str(Tag::Label, "kek").str(Tag::Context, "client-" + std::to_string(t) + "-" + std::to_string(i));
                    c.send(g);
                }
                for (uint32_t i = 0; i < kDepth; ++i) {
                    auto r = c.receive(kReplyTimeout);
                    if (!r) throw std::runtime_error("no GENERATE_DATA_KEY reply");
                    if (r->error_code()) throw std::runtime_error("GENERATE_DATA_KEY: " + r->error_message());
                    auto dk = *r->msg.get(Tag::DataKey);
                    auto w = *r->msg.get(Tag::Wrapped);
                    expected_key[r->msg.request_id].assign(dk.begin(), dk.end());
                    wrapped_of[r->msg.request_id].assign(w.begin(), w.end());
                }
                for (uint32_t i = 0; i < kDepth; ++i) {
                    auto u = req(Opcode::Unwrap, 1000 + i);
                    u.bytes(Tag::Wrapped, wrapped_of[i]).str(Tag::Context, "client-" + std::to_string(t) + "-" + std::to_string(i));
                    c.send(u);
                    std::vector<uint8_t> digest(32);
                    crypto_backend().random(digest);
                    digest_of[2000 + i] = digest;
                    auto s = req(Opcode::Sign, 2000 + i);
                    s.str(Tag::Label, "ec").u8(Tag::Algorithm, uint8_t(SignAlgorithm::EcdsaSha256)).bytes(Tag::Data, digest);
                    c.send(s);
                }
                for (uint32_t i = 0; i < 2 * kDepth; ++i) {
                    auto r = c.receive(kReplyTimeout);
                    if (!r) throw std::runtime_error("no reply after " + std::to_string(i) + " of the second batch");
                    if (r->error_code()) throw std::runtime_error("request failed: " + r->error_message());
                    const uint32_t id = r->msg.request_id;
                    if (id >= 2000) {
                        auto sig = *r->msg.get(Tag::Signature);
                        if (!crypto_backend().verify(spki, SignAlgorithm::EcdsaSha256, digest_of.at(id), sig))
                            throw std::runtime_error("bad signature");
                    } else {
                        auto dk = *r->msg.get(Tag::DataKey);
                        if (std::vector<uint8_t>(dk.begin(), dk.end()) != expected_key.at(id - 1000))
                            throw std::runtime_error("wrong data key");
                    }
                    ++correct;
                }
            } catch (const std::exception& e) {
                ++failures;
                std::lock_guard lk(first_failure_mu);
                if (first_failure.empty()) first_failure = "client " + std::to_string(t) + ": " + e.what();
            }
        });
    }
    for (auto& th : threads) th.join();
    INFO(first_failure);
    CHECK(failures == 0);
    CHECK(correct == kClients * 2 * static_cast<int>(kDepth));
}

TEST_CASE("an ECDSA signature is not queued behind a burst of RSA signatures", "[integration]") {
    const auto p256 = make_identity(KeyKind::EcP256);
    const auto rsa = make_identity(KeyKind::Rsa, 2048);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "ec"}, {"privateKey", p256.key_pem_pkcs8}});
    j.push_back({{"name", "rsa"}, {"privateKey", rsa.key_pem_legacy}});
    KeysDaemon d(j.dump());
    RawClient c(d.socket());
    // 64 RSA-2048 signatures pipelined, then one ECDSA signature, all on one connection. In one
    // FIFO shared by every operation the ECDSA reply would come after (nearly) all of them.
    // The 65 frames leave in one write, so the daemon has them all before any RSA signature is
    // done (65 writes let a loaded machine's workers start on the first ones meanwhile).
    constexpr uint32_t kRsa = 64;
    std::vector<uint8_t> digest(32, 0x5a);
    std::vector<uint8_t> burst;
    for (uint32_t i = 0; i < kRsa; ++i) {
        auto s = req(Opcode::Sign, i);
        s.str(Tag::Label, "rsa").u8(Tag::Algorithm, static_cast<uint8_t>(SignAlgorithm::RsaPssSha256)).bytes(Tag::Data, digest);
        const auto frame = s.finish();
        burst.insert(burst.end(), frame.begin(), frame.end());
    }
    auto e = req(Opcode::Sign, 1000);
    e.str(Tag::Label, "ec").u8(Tag::Algorithm, static_cast<uint8_t>(SignAlgorithm::EcdsaSha256)).bytes(Tag::Data, digest);
    const auto ecdsa_frame = e.finish();
    burst.insert(burst.end(), ecdsa_frame.begin(), ecdsa_frame.end());
    c.send_bytes(burst);
    int ecdsa_position = -1;
    for (uint32_t n = 0; n <= kRsa; ++n) {
        auto r = c.receive(std::chrono::seconds(60));
        REQUIRE(r);
        REQUIRE(r->error_code() == 0);
        if (r->msg.request_id == 1000) ecdsa_position = static_cast<int>(n);
    }
    INFO("the ECDSA reply came as reply " << ecdsa_position << " of " << kRsa + 1);
    REQUIRE(ecdsa_position >= 0);
    // An RSA-2048 signature takes several times an ECDSA one: with its own lane, the ECDSA reply
    // overtakes all but the RSA signatures already being made.
    CHECK(ecdsa_position < static_cast<int>(kRsa / 2));
}
