// Fuzz target: the full request dispatcher in memory, as OpenSSH's agent fuzzer feeds
// process_message. A keychain holds an AES KEK, an ECDSA P-256 and an RSA-2048 identity; the
// input picks a peer and is a stream of frames, each handled as Server::handle_frame does it
// (decode, opcode, Operations::check_request, Operations::run), with no socket and no thread.
// WAIT, DISCOVER and SUBSCRIBE need the event loop and stop at the policy check.
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "core/crypto_backend.h"
#include "core/log.h"
#include "fuzz_input.h"
#include "server/operations.h"
#include "test_keys.h"

using namespace keychaind;
using wire::Opcode;

namespace {

// The KEK's bytes are fixed (0x00..0x1f) so seed inputs can carry KCW1 data keys wrapped under it.
struct Preloaded {
    std::vector<std::shared_ptr<const Key>> keys;
    std::shared_ptr<const policy::Policy> policy;
};

std::shared_ptr<const Key> identity_key(KeyKind kind, const std::string& label) {
    const test::TestIdentity id = test::make_identity(kind, 2048, label);
    auto pk = crypto_backend().parse_private_key(
        {reinterpret_cast<const uint8_t*>(id.key_pem_pkcs8.data()), id.key_pem_pkcs8.size()});
    return Key::identity(std::move(pk), {id.cert_der}, label);
}

Preloaded& preloaded() {
    static Preloaded p = [] {
        Preloaded r;
        SecretBytes kek(Key::kAesKeySize);
        for (size_t i = 0; i < kek.size(); ++i) kek.data()[i] = static_cast<uint8_t>(i);
        r.keys.push_back(Key::aes(std::move(kek), "kek"));
        r.keys.push_back(identity_key(KeyKind::EcP256, "ec"));
        r.keys.push_back(identity_key(KeyKind::Rsa, "rsa"));  // generated once: slow
        r.policy = policy::Policy::builtin(geteuid());
        return r;
    }();
    return p;
}

Caller caller_for(uint8_t choice) {
    auto identity = std::make_shared<PeerIdentity>();
    switch (choice % 3) {
        case 0: break;  // root: the built-in policy allows everything
        case 1: identity->peer = {4242, 4242, 4242, {4242}, "/usr/sbin/nginx", "nginx.service"}; break;
        default: identity->error = "no pidfd"; break;  // every request refused
    }
    Caller c{identity, preloaded().policy, nullptr};
    c.view = std::make_shared<const policy::Policy::PeerView>(policy::Policy::view_for(c.policy, identity->peer));
    return c;
}

// A reply must be one well-formed frame carrying the request's id.
void check_reply(const WipingBuffer& frame, uint32_t request_id) {
    if (frame.size() < wire::kLengthPrefixSize + wire::kHeaderSize ||
        wire::read_be32(frame.data()) != frame.size() - wire::kLengthPrefixSize)
        std::abort();
    const wire::Message m = wire::decode(std::span<const uint8_t>(frame).subspan(wire::kLengthPrefixSize));
    if (m.request_id != request_id) std::abort();
}

// One frame body, as Server::handle_frame and Server::dispatch treat it. False: the server would
// close the connection.
bool handle_frame(Operations& ops, const Caller& caller, const WipingBuffer& body) {
    wire::Message msg;
    try {
        msg = wire::decode(body);
    } catch (const wire::DecodeError& e) {
        check_reply(error_reply(0, ErrorCode::BadRequest, e.what()), 0);
        return false;
    }
    const auto op = wire::request_opcode(msg.opcode);
    if (!op) return true;
    WipingBuffer reply;
    try {
        ops.check_request(*op, msg, caller);
        if (*op == Opcode::Wait || *op == Opcode::Discover || *op == Opcode::Subscribe) return true;
        Keychain::Described found;
        if (!Operations::runs_on_worker(*op) || ops.runs_inline(*op, msg, &found)) {
            // The loop thread: an exception other than these two would leave the event loop.
            reply = ops.run(*op, msg, caller, found.key ? &found : nullptr);
        } else {
            (void)Operations::lane_of(*op, msg);
            try {
                reply = ops.run(*op, msg, caller);
            } catch (const KeychainError&) {
                throw;
            } catch (const wire::DecodeError&) {
                throw;
            } catch (const std::exception&) {
                reply = error_reply(msg.request_id, ErrorCode::Internal, "internal error");
            }
        }
    } catch (const KeychainError& e) {
        reply = error_reply(msg.request_id, e.code(), e.what());
    } catch (const wire::DecodeError& e) {
        reply = error_reply(msg.request_id, ErrorCode::BadRequest, e.what());
    }
    check_reply(reply, msg.request_id);
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::set_level(log::Level::Error);
    (void)preloaded();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::FuzzInput in(data, size);
    Keychain keychain;
    for (const auto& k : preloaded().keys) keychain.add(k, KeyOrigin{"file", "/fuzz/" + k->label(), false});
    DaemonState state;
    Access access(nullptr);
    Operations ops(keychain, state, access);
    ops.set_pin_handler([](std::string_view, SecretBytes) -> size_t {
        throw KeychainError(ErrorCode::BadRequest, "no [[pkcs11.token]] here");
    });
    const Caller caller = caller_for(in.u8());

    // RSA private-key operations cost milliseconds: a bounded count of frames per input.
    constexpr int kMaxFrames = 16;
    wire::FrameReader reader(wire::kDefaultMaxFrame);
    reader.append(in.rest());
    try {
        for (int n = 0; n < kMaxFrames; ++n) {
            auto body = reader.next();
            if (!body || !handle_frame(ops, caller, *body)) break;
        }
    } catch (const wire::DecodeError&) {
        // A zero or oversized frame length: the connection is closed.
    }
    return 0;
}
