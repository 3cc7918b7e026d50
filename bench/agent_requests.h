// ssh-agent protocol (draft-miller-ssh-agent) for the load generator: SSH_AGENTC_SIGN_REQUEST
// with a key blob from SSH_AGENTC_REQUEST_IDENTITIES. The agent answers in order, one request at a
// time per connection.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pipelined_load.h"

namespace keychaind::bench {

struct AgentIdentity {
    std::vector<uint8_t> key_blob;
    std::string key_type;  // the blob's first string: "ecdsa-sha2-nistp256", "ssh-rsa"
    std::string comment;
};

// SSH_AGENTC_REQUEST_IDENTITIES on a fresh connection.
std::vector<AgentIdentity> agent_identities(const std::string& socket_path);

class AgentSignRequests final : public StreamProtocol {
  public:
    static constexpr uint32_t kRsaSha2_256 = 2;  // SSH_AGENT_RSA_SHA2_256
    // The agent hashes `data` itself; 32 bytes stand for a handshake's signed data.
    AgentSignRequests(const AgentIdentity& key, uint32_t flags, size_t data_size = 32);

    void append_request(uint32_t tag, std::vector<uint8_t>& out) const override;
    std::optional<uint32_t> reply_tag(std::span<const uint8_t> body, bool& ok) const override;
    bool has_request_ids() const override { return false; }

    // One request on a fresh connection; throws unless the agent signs.
    void check_signs(const std::string& socket_path) const;

  private:
    std::vector<uint8_t> frame_;
    size_t data_last_byte_ = 0;
};

}  // namespace keychaind::bench
