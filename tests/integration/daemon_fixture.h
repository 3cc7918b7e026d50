// Shared set-up for integration tests: a temp dir with keys, a running daemon, typed requests.
#pragma once

#include <string>
#include <vector>

#include "daemon_process.h"
#include "protocol/message.h"
#include "raw_client.h"
#include "temp_dir.h"

namespace keychaind::test {

// Sends one request on a fresh connection and returns its reply.
Reply request(const std::string& socket, wire::MessageBuilder b);

inline wire::MessageBuilder req(wire::Opcode op, uint32_t id = 1) {
    return wire::MessageBuilder(static_cast<uint8_t>(op), id);
}
inline uint8_t ok_opcode(wire::Opcode op) { return static_cast<uint8_t>(static_cast<uint8_t>(op) | 0x80); }

// Writes `content` to dir/name with mode 0600. A keychain file's keys are remembered: a daemon
// that logs one fails the test (known_secrets.h).
void write_file(const std::string& path, const std::string& content);

// A daemon with a keys/ directory holding `keychain_json` as keys/test.4DKeyChain.
struct KeysDaemon {
    TempDir dir;
    std::string keys_dir;
    std::unique_ptr<DaemonProcess> daemon;
    explicit KeysDaemon(const std::string& keychain_json, const std::string& extra_config = "");
    const std::string& socket() const { return daemon->socket_path(); }
};

}  // namespace keychaind::test
