// keychainctl: the command-line client of keychaind (docs/client.md).
#include <cerrno>
#include <cstdio>
#include <iostream>

#include "core/error.h"
#include "core/secret_bytes.h"
#include "ctl.h"
#include "text_format.h"

namespace {

constexpr const char* kFooter =
    "KEY is a key id (32 or 64 hex digits), label:NAME, or a label.\n"
    "The socket is --socket, else $KEYCHAIND_SOCKET, else /run/keychaind/keychaind.sock.\n"
    "Exit codes: 0 ok, 1 usage error, 2 cannot connect to keychaind, 3 keychaind answered an\n"
    "error, 4 timeout (wait), 5 local I/O error, 6 denied (policy explain).";

// Secrets read here live in locked memory when the memlock limit allows; a short-lived
// command still works when it does not (they are wiped and kept out of core dumps either way).
void prepare_secret_memory() {
    try {
        keychaind::SecretBytes probe(1);
    } catch (const std::exception&) {
        keychaind::secure_arena::set_require_locked(false);
    }
}

int report_client_error(const keychain::Error& e) {
    using namespace keychain::ctl;
    const int code = e.code();
    if (code >= 1 && code < 100) {
        std::cerr << "keychainctl: " << e.name() << ": " << printable(e.message()) << "\n";
        return code == KC_ERR_TIMEOUT ? kExitTimeout : kExitDaemon;
    }
    std::cerr << "keychainctl: " << printable(e.message()) << "\n";
    switch (code) {
        case KC_ERR_CONNECT:
        case KC_ERR_IO:
        case KC_ERR_PROTOCOL: return kExitConnect;
        case KC_ERR_ARGUMENT: return kExitUsage;
        default: return kExitLocalIo;
    }
}

}  // namespace

namespace keychain::ctl {

void add_common_options(CLI::App* sub, CommonOptions& common) {
    sub->add_option("--socket", common.socket, "keychaind's socket")->type_name("PATH");
    sub->add_flag("--json", common.json, "machine-readable output (JSON)");
}

keychain::Client connect(const CommonOptions& common) {
    return keychain::Client(common.socket.empty() ? nullptr : common.socket.c_str());
}

}  // namespace keychain::ctl

int main(int argc, char** argv) {
    using namespace keychain::ctl;
    CLI::App app{"keychainctl: use and manage the keys held by keychaind"};
    app.footer(kFooter);  // before the subcommands, which inherit it
    app.require_subcommand(1);
    CommonOptions common;
    Action action;
    add_info_commands(app, common, action);
    add_crypto_commands(app, common, action);
    add_envelope_commands(app, common, action);
    add_admin_commands(app, common, action);
    add_new_key_command(app, common, action);
    add_csr_command(app, common, action);
    add_keygen_command(app, common, action);
    add_policy_commands(app, common, action);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    prepare_secret_memory();
    try {
        if (action) action();
        std::cout.flush();
        if (!std::cout) {
            std::cerr << "keychainctl: cannot write to standard output\n";
            return kExitLocalIo;
        }
        return kExitOk;
    } catch (const keychain::Error& e) {
        return report_client_error(e);
    } catch (const CtlError& e) {
        if (*e.what() != '\0') std::cerr << "keychainctl: " << e.what() << "\n";
        return e.exit_code();
    } catch (const keychaind::KeychainError& e) {
        // Local checks of core helpers (an empty passphrase...): the input was wrong.
        std::cerr << "keychainctl: " << e.what() << "\n";
        return kExitUsage;
    } catch (const std::exception& e) {
        std::cerr << "keychainctl: " << e.what() << "\n";
        return kExitLocalIo;
    }
}
