// keychainctl's shared pieces: exit codes, common options, the error type, the command table.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>

#include "keychain/client.hpp"

namespace keychain::ctl {

// Documented in --help and docs/client.md; scripts depend on them.
enum Exit : int {
    kExitOk = 0,
    kExitUsage = 1,
    kExitConnect = 2,  // cannot connect to (or keep talking with) keychaind
    kExitDaemon = 3,   // keychaind answered an error
    kExitTimeout = 4,  // wait ran out
    kExitLocalIo = 5,  // a local file could not be read or written
    kExitDenied = 6,   // policy explain: the policy denies
};

// A failure with the exit code it deserves; main prints "keychainctl: <message>" (nothing for an
// empty message: the command has said everything already).
class CtlError : public std::runtime_error {
public:
    CtlError(int exit_code, const std::string& message) : std::runtime_error(message), exit_code_(exit_code) {}
    int exit_code() const noexcept { return exit_code_; }

private:
    int exit_code_;
};

[[noreturn]] inline void usage_error(const std::string& message) { throw CtlError(kExitUsage, message); }

struct CommonOptions {
    std::string socket;  // empty: $KEYCHAIND_SOCKET, else /run/keychaind/keychaind.sock
    bool json = false;
};

// What the chosen subcommand does once the command line is parsed.
using Action = std::function<void()>;

// --socket and --json, on every subcommand that talks to the daemon.
void add_common_options(CLI::App* sub, CommonOptions& common);
keychain::Client connect(const CommonOptions& common);

// status, list, public, discover, wait, watch
void add_info_commands(CLI::App& app, CommonOptions& common, Action& action);
// sign, decrypt
void add_crypto_commands(CLI::App& app, CommonOptions& common, Action& action);
// gen-datakey, wrap, unwrap, rewrap
void add_envelope_commands(CLI::App& app, CommonOptions& common, Action& action);
// provide, provide-pin, forget, lock, unlock
void add_admin_commands(CLI::App& app, CommonOptions& common, Action& action);
// new-key (local: makes a .4DKeyChain file)
void add_new_key_command(CLI::App& app, CommonOptions& common, Action& action);
// csr (a certificate request signed through the daemon)
void add_csr_command(CLI::App& app, CommonOptions& common, Action& action);
// keygen (local: makes a TLS identity as a .4DKeyChain file)
void add_keygen_command(CLI::App& app, CommonOptions& common, Action& action);
// policy check, policy explain (local: reads the policy file)
void add_policy_commands(CLI::App& app, CommonOptions& common, Action& action);

}  // namespace keychain::ctl
