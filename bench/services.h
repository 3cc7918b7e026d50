// The processes under test, each started on a socket in the bench's temporary directory and
// stopped by its destructor: keychaind, ssh-agent, p11-kit server.
#pragma once

#include <string>
#include <vector>

#include "child_process.h"

namespace keychaind::bench {

struct KeychaindConfig {
    std::string key_dir;      // [keys] directories; empty: none
    std::string token_label;  // a SoftHSM2 token to serve ([[pkcs11.token]]); empty: none
    std::string token_pin;
    std::string softhsm_module;
    int token_sessions = 0;  // [[pkcs11.token]] sessions; 0: the daemon's default
};

// keychaind --foreground with the daemon's defaults except: the socket, the keys given, the
// built-in policy, no audit records (this machine has no journal, so "auto" writes none either),
// log level "warning" (no line per request).
class KeychaindService {
  public:
    KeychaindService(const std::string& binary, const std::string& dir,
                     const KeychaindConfig& config);
    const std::string& socket() const { return socket_; }
    pid_t pid() const { return process_.pid(); }
    // Polls STATUS until `count` keys are present; throws with the daemon's log otherwise.
    void wait_for_keys(uint32_t count, double timeout_s);
    void stop() { process_.stop(); }

  private:
    std::string socket_;
    ChildProcess process_;
};

// ssh-agent -D -a SOCK, with `pem_files` added by ssh-add.
class SshAgentService {
  public:
    SshAgentService(const std::string& dir, const std::vector<std::string>& pem_files);
    const std::string& socket() const { return socket_; }
    pid_t pid() const { return process_.pid(); }

  private:
    std::string socket_;
    ChildProcess process_;
};

// p11-kit server --foreground --provider MODULE --name SOCK "pkcs11:token=LABEL"; a client loads
// p11-kit-client.so with P11_KIT_SERVER_ADDRESS = address().
class P11KitServer {
  public:
    P11KitServer(const std::string& dir, const std::string& module, const std::string& token_label);
    std::string address() const { return "unix:path=" + socket_; }
    pid_t pid() const { return process_.pid(); }

  private:
    std::string socket_;
    ChildProcess process_;
};

}  // namespace keychaind::bench
