// keychaind requests for the load generator: frames built once with the protocol codec, then
// copied with a fresh request id; and one-off blocking calls for set-up.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/crypto_backend.h"
#include "core/secret_bytes.h"
#include "pipelined_load.h"
#include "protocol/message.h"

namespace keychaind::bench {

class KeychaindRequests final : public StreamProtocol {
  public:
    static KeychaindRequests sign(std::span<const uint8_t> key_id, SignAlgorithm alg,
                                  size_t digest_size);
    static KeychaindRequests unwrap(std::span<const uint8_t> wrapped);
    static KeychaindRequests generate_data_key(std::span<const uint8_t> kek_id);
    // Requests taken in turn from several kinds (the long mixed run).
    static KeychaindRequests mixed(std::vector<KeychaindRequests> parts);

    void append_request(uint32_t tag, std::vector<uint8_t>& out) const override;
    std::optional<uint32_t> reply_tag(std::span<const uint8_t> body, bool& ok) const override;
    bool has_request_ids() const override { return true; }

  private:
    struct Template {
        WipingBuffer frame;
        bool vary_last_byte =
            false;  // a SIGN's digest ends the frame: sign a different one each time
    };
    explicit KeychaindRequests(std::vector<Template> t) : templates_(std::move(t)) {}
    std::vector<Template> templates_;
};

// A whole request/reply on a fresh connection; throws naming the daemon's error reply.
struct CallResult {
    WipingBuffer body;
    wire::Message message;  // views into body
};
CallResult call(const std::string& socket_path, wire::MessageBuilder& request);

// GENERATE_DATA_KEY once: the wrapped blob UNWRAP benchmarks send back.
std::vector<uint8_t> wrapped_data_key(const std::string& socket_path,
                                      std::span<const uint8_t> kek_id);
// STATUS's COUNT: keys present.
uint32_t keys_present(const std::string& socket_path);

}  // namespace keychaind::bench
