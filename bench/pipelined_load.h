// Pipelined load over stream sockets: many connections, each keeping `depth` requests in flight,
// driven by a few epoll threads; latency from send to reply, merged across connections.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "latency.h"
#include "measurement.h"

namespace keychaind::bench {

// A request/reply protocol framed by a 4-byte big-endian length (keychaind's and ssh-agent's).
class StreamProtocol {
  public:
    virtual ~StreamProtocol() = default;
    // Appends one whole request frame, length prefix included, that carries `tag` when the
    // protocol has request ids. Called from several client threads at once.
    virtual void append_request(uint32_t tag, std::vector<uint8_t>& out) const = 0;
    // The tag a reply body (without its length prefix) answers; `ok` false for an error reply.
    // Protocols without request ids answer in order and return nullopt.
    virtual std::optional<uint32_t> reply_tag(std::span<const uint8_t> body, bool& ok) const = 0;
    // Whether replies carry the request's tag (else they come back in request order).
    virtual bool has_request_ids() const = 0;
};

struct LoadShape {
    int connections = 1;
    int depth = 1;           // requests in flight per connection, at most kMaxDepth
    int client_threads = 1;  // epoll threads; connections are spread over them
};

inline constexpr int kMaxDepth = 128;

// Throws std::runtime_error when a connection fails or closes, or replies stop coming.
Summary run_pipelined(const StreamProtocol& protocol, const std::string& socket_path,
                      const LoadShape& shape, const Timing& timing, pid_t server_pid);

}  // namespace keychaind::bench
