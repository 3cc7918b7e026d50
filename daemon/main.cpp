// keychaind: start-up — arguments, config, hardening, key sources, serve.
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "config/config.h"
#include "core/crypto_backend.h"
#include "core/log.h"
#include "core/secret_bytes.h"
#include "file/directory_source.h"
#include "file/identity_source.h"
#include "media/media_source.h"
#include "media/private_mount.h"
#include "media/udev_watcher.h"
#include "process_hardening.h"
#include "server/server.h"
#include "token/token_source.h"

using namespace keychaind;

namespace {

std::vector<std::shared_ptr<KeySource>> make_sources(const Config& cfg, const SourceHooks& hooks) {
    std::vector<std::shared_ptr<KeySource>> s;
    if (!cfg.identities.empty()) s.push_back(std::make_shared<file::IdentitySource>(cfg.identities));
    if (!cfg.directories.empty()) s.push_back(std::make_shared<file::DirectorySource>(cfg.directories));
    // No module is loaded here: the first scan loads them, after daemonize() (PKCS#11 modules
    // must not be used across fork()).
    if (!cfg.pkcs11.tokens.empty()) s.push_back(std::make_shared<token::TokenSource>(cfg.pkcs11, hooks));
    if (cfg.devices.enable) {
        const auto& mounts = media::private_mount_setup();
        if (!mounts.ready) {
            log::warning("removable devices are off: " + mounts.error +
                         " (needs root; [devices] enable = false turns them off quietly)");
        } else {
            try {
                s.push_back(std::make_shared<media::MediaSource>(
                    cfg.devices, std::make_unique<media::UdevDeviceMonitor>(), mounts.staging_dir, hooks));
            } catch (const std::exception& e) {
                log::warning(std::string("removable devices are off: ") + e.what());
            }
        }
    }
    return s;
}

// Device mount points live here: a tmpfs of the daemon's own mount namespace, beside the socket.
std::string device_staging_dir(const Config& cfg) {
    return (std::filesystem::path(cfg.socket_path).parent_path() / "devices").string();
}

}  // namespace

int main(int argc, char** argv) {
    // Before OpenSSL allocates anything (whichever backend serves, libcrypto is linked).
    if (!keychaind::wipe_openssl_frees()) {
        std::cerr << "keychaind: cannot make OpenSSL wipe the memory it frees (it allocated before main)\n";
        return 1;
    }
    CLI::App app{"keychaind: hardware-backed key service"};
    std::string config_path = "/etc/keychaind/keychaind.conf";
    bool foreground = false;
    bool check_only = false;
    app.add_option("-c,--config", config_path, "configuration file (docs/config.md)");
    app.add_flag("-f,--foreground", foreground, "stay in the foreground and log to stderr");
    app.add_flag("--check-config", check_only, "validate the configuration and exit");
    app.set_version_flag("--version", std::string("keychaind ") + KEYCHAIND_VERSION);
    CLI11_PARSE(app, argc, argv);

    // Before anything holds a secret.
    try {
        forbid_core_dumps_and_ptrace();
    } catch (const std::exception& e) {
        std::cerr << "keychaind: " << e.what() << "\n";
        return 1;
    }
    umask(077);

    Config cfg;
    try {
        cfg = load_config(config_path);
    } catch (const std::exception& e) {
        std::cerr << "keychaind: configuration error: " << e.what() << "\n";
        return 2;
    }
    // The policy file is part of the configuration: checked here, before daemonizing, so a
    // mistake is told on the terminal with the config's exit status (the server loads it again).
    if (cfg.uses_policy_file()) {
        try {
            policy::Policy::load(cfg.policy_path);
        } catch (const std::exception& e) {
            std::cerr << "keychaind: policy error: " << e.what() << "\n";
            return 2;
        }
    }
    if (check_only) {
        std::cout << config_path << ": ok\n";
        return 0;
    }
    log::set_level(cfg.log_level);
    if (std::getenv("JOURNAL_STREAM") != nullptr) log::set_syslog_prefix(true);
    if (!foreground) {
        daemonize();
        log::use_syslog();
    }

    // Fork first (mlockall is not inherited), then lock before any key is read.
    if (const std::string why = lock_all_memory(); !why.empty()) {
        if (!cfg.allow_unlocked_memory) {
            log::error("cannot lock memory: " + why +
                       " (allow_unlocked_memory = true runs without it, for demos only)");
            return 1;
        }
        log::warning("running WITHOUT locked memory (allow_unlocked_memory = true; demo only): " + why);
        secure_arena::set_require_locked(false);
    }

    // While this is the only thread: unshare(CLONE_NEWNS) refuses a process with others.
    if (cfg.devices.enable) media::enter_private_mount_namespace(device_staging_dir(cfg));

    Server::block_signals();
    try {
        // Made now, after the memory is locked and before any key is read: a backend that
        // cannot keep keys safe (OpenSSL's secure heap) stops the start here.
        log::info("crypto backend " + std::string(crypto_backend().name()));
        Keychain keychain;
        Server server(cfg, make_sources, keychain);
        server.start();
        sd_notify(0, "READY=1\nSTATUS=serving");
        server.run();
        sd_notify(0, "STOPPING=1");
    } catch (const std::exception& e) {
        log::error(e.what());
        return 1;
    }
    // The sources are gone: their PKCS#11 modules are being finalized and unloaded.
    if (!token::finish_token_modules(std::chrono::milliseconds(cfg.pkcs11.call_timeout_ms))) {
        // A thread is stuck inside a module: running the process's static destructors (the
        // module's among them) under it could crash. The keychain is empty and wiped already.
        log::warning("a PKCS#11 module is still busy in a call that never returned; exiting without unloading it");
        log::info("keychain emptied; exiting");
        std::fflush(nullptr);
        _exit(0);
    }
    log::info("keychain emptied; exiting");
    return 0;
}
