// Service start-up: config files, sockets, readiness checks.
#include "services.h"

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "bench_keys.h"
#include "keychaind_requests.h"
#include "soft_token.h"

namespace keychaind::bench {
namespace {

std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string keychaind_config(const std::string& dir, const std::string& socket,
                             const KeychaindConfig& c) {
    std::string t = "[daemon]\nsocket = " + toml_string(socket) +
                    "\nsocket_group = \"\"\nlog_level = \"warning\"\npolicy = "
                    "\"\"\n\n[audit]\ntarget = \"off\"\n\n";
    if (!c.key_dir.empty()) t += "[keys]\ndirectories = [" + toml_string(c.key_dir) + "]\n\n";
    if (!c.token_label.empty()) {
        const std::string pin_file = dir + "/token.pin";
        write_private_file(pin_file, c.token_pin);
        t += "[pkcs11]\nmodule_paths = [" + toml_string(c.softhsm_module) +
             "]\n\n[[pkcs11.token]]\nname = \"bench\"\n" +
             "module = " + toml_string(c.softhsm_module) +
             "\nuri = " + toml_string("pkcs11:token=" + c.token_label) +
             "\npin_file = " + toml_string(pin_file) + "\n";
        if (c.token_sessions > 0) t += "sessions = " + std::to_string(c.token_sessions) + "\n";
    }
    const std::string path = dir + "/keychaind.conf";
    write_private_file(path, t);
    return path;
}

}  // namespace

KeychaindService::KeychaindService(const std::string& binary, const std::string& dir,
                                   const KeychaindConfig& config)
    : socket_(dir + "/keychaind.sock"),
      process_({binary, "--foreground", "--config",
                keychaind_config(dir, dir + "/keychaind.sock", config)},
               dir + "/keychaind.log") {
    process_.wait_for_socket(socket_, std::chrono::seconds(20));
}

void KeychaindService::wait_for_keys(uint32_t count, double timeout_s) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    uint32_t present = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        present = keys_present(socket_);
        if (present >= count) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("keychaind has " + std::to_string(present) + " keys, expected " +
                             std::to_string(count) + ":\n" + process_.log());
}

SshAgentService::SshAgentService(const std::string& dir, const std::vector<std::string>& pem_files)
    : socket_(dir + "/ssh-agent.sock"),
      process_({"ssh-agent", "-D", "-a", dir + "/ssh-agent.sock"}, dir + "/ssh-agent.log") {
    process_.wait_for_socket(socket_, std::chrono::seconds(10));
    for (const auto& pem : pem_files) {
        // ssh-add finds the agent through SSH_AUTH_SOCK only.
        const auto r = test::run_command({"env", "SSH_AUTH_SOCK=" + socket_, "ssh-add", "-q", pem});
        if (r.exit_code != 0) throw std::runtime_error("ssh-add " + pem + " failed: " + r.output);
    }
}

P11KitServer::P11KitServer(const std::string& dir, const std::string& module,
                           const std::string& token_label)
    : socket_(dir + "/p11-kit.sock"),
      process_({"p11-kit", "server", "--foreground", "--provider", module, "--name",
                dir + "/p11-kit.sock", "pkcs11:token=" + token_label},
               dir + "/p11-kit-server.log") {
    process_.wait_for_socket(socket_, std::chrono::seconds(10));
}

}  // namespace keychaind::bench
