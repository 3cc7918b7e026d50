// ssh-agent messages: uint32 length, byte type, then SSH strings (uint32 length + bytes).
#include "agent_requests.h"

#include <unistd.h>

#include <stdexcept>

#include "child_process.h"
#include "core/unique_fd.h"

namespace keychaind::bench {
namespace {

constexpr uint8_t kAgentFailure = 5;
constexpr uint8_t kRequestIdentities = 11;
constexpr uint8_t kIdentitiesAnswer = 12;
constexpr uint8_t kSignRequest = 13;
constexpr uint8_t kSignResponse = 14;
constexpr uint32_t kMaxAgentReply = 256 * 1024;

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
    out.push_back(static_cast<uint8_t>(v >> 24));
    out.push_back(static_cast<uint8_t>(v >> 16));
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}

void put_string(std::vector<uint8_t>& out, std::span<const uint8_t> s) {
    put_u32(out, static_cast<uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
}

uint32_t get_u32(std::span<const uint8_t>& in) {
    if (in.size() < 4) throw std::runtime_error("ssh-agent reply is truncated");
    const uint32_t v =
        (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) | (uint32_t{in[2]} << 8) | in[3];
    in = in.subspan(4);
    return v;
}

std::span<const uint8_t> get_string(std::span<const uint8_t>& in) {
    const uint32_t n = get_u32(in);
    if (in.size() < n) throw std::runtime_error("ssh-agent reply is truncated");
    const auto s = in.first(n);
    in = in.subspan(n);
    return s;
}

// Sends one framed message and returns the reply's body.
std::vector<uint8_t> roundtrip(const std::string& socket_path, const std::vector<uint8_t>& frame) {
    UniqueFd fd(connect_unix(socket_path, false));
    if (!fd) throw std::runtime_error("connect to ssh-agent at " + socket_path + " failed");
    if (::write(fd.get(), frame.data(), frame.size()) != static_cast<ssize_t>(frame.size()))
        throw std::runtime_error("write to ssh-agent failed");
    const auto read_exact = [&](uint8_t* p, size_t n) {
        while (n > 0) {
            const ssize_t got = ::read(fd.get(), p, n);
            if (got <= 0) throw std::runtime_error("ssh-agent closed the connection");
            p += got;
            n -= static_cast<size_t>(got);
        }
    };
    uint8_t len[4];
    read_exact(len, 4);
    std::span<const uint8_t> l(len, 4);
    const uint32_t n = get_u32(l);
    if (n == 0 || n > kMaxAgentReply) throw std::runtime_error("ssh-agent sent a bad frame length");
    std::vector<uint8_t> body(n);
    read_exact(body.data(), n);
    return body;
}

}  // namespace

std::vector<AgentIdentity> agent_identities(const std::string& socket_path) {
    const std::vector<uint8_t> request = {0, 0, 0, 1, kRequestIdentities};
    const auto body = roundtrip(socket_path, request);
    std::span<const uint8_t> in(body);
    if (in.empty() || in[0] != kIdentitiesAnswer)
        throw std::runtime_error("ssh-agent refused to list identities");
    in = in.subspan(1);
    const uint32_t count = get_u32(in);
    std::vector<AgentIdentity> ids;
    for (uint32_t i = 0; i < count; ++i) {
        AgentIdentity id;
        const auto blob = get_string(in);
        id.key_blob.assign(blob.begin(), blob.end());
        std::span<const uint8_t> b(id.key_blob);
        const auto type = get_string(b);
        id.key_type.assign(type.begin(), type.end());
        const auto comment = get_string(in);
        id.comment.assign(comment.begin(), comment.end());
        ids.push_back(std::move(id));
    }
    return ids;
}

AgentSignRequests::AgentSignRequests(const AgentIdentity& key, uint32_t flags, size_t data_size) {
    std::vector<uint8_t> msg{kSignRequest};
    put_string(msg, key.key_blob);
    put_string(msg, std::vector<uint8_t>(data_size, 0x5c));
    data_last_byte_ = 4 + msg.size() - 1;
    put_u32(msg, flags);
    put_u32(frame_, static_cast<uint32_t>(msg.size()));
    frame_.insert(frame_.end(), msg.begin(), msg.end());
}

void AgentSignRequests::append_request(uint32_t tag, std::vector<uint8_t>& out) const {
    const size_t at = out.size();
    out.insert(out.end(), frame_.begin(), frame_.end());
    out[at + data_last_byte_] = static_cast<uint8_t>(out[at + data_last_byte_] ^ (tag >> 7));
}

std::optional<uint32_t> AgentSignRequests::reply_tag(std::span<const uint8_t> body,
                                                     bool& ok) const {
    ok = !body.empty() && body[0] == kSignResponse;
    return std::nullopt;
}

void AgentSignRequests::check_signs(const std::string& socket_path) const {
    const auto body = roundtrip(socket_path, frame_);
    if (body.empty() || body[0] != kSignResponse)
        throw std::runtime_error(body.size() == 1 && body[0] == kAgentFailure
                                     ? "ssh-agent answered SSH_AGENT_FAILURE to a sign request"
                                     : "ssh-agent sent an unexpected reply to a sign request");
}

}  // namespace keychaind::bench
