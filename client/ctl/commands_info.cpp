// status, list, public, discover, wait, watch.
#include <iostream>
#include <memory>

#include "ctl.h"
#include "file_io.h"
#include "text_format.h"

namespace keychain::ctl {

namespace {

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

void run_status(const CommonOptions& common) {
    auto client = connect(common);
    const auto s = client.status();
    if (common.json) {
        print_json({{"version", s.version},
                    {"backend", s.backend},
                    {"keys", s.key_count},
                    {"locked", s.locked},
                    {"uptime_seconds", s.uptime_seconds}});
        return;
    }
    std::cout << "keychaind " << printable(s.version) << " (" << printable(s.backend) << ")\n"
              << "keys present: " << s.key_count << "\n"
              << "locked: " << (s.locked ? "yes" : "no") << "\n"
              << "uptime: " << s.uptime_seconds << " s\n";
}

void run_list(const CommonOptions& common, bool all) {
    auto client = connect(common);
    const auto keys = client.list_keys(all);
    if (common.json) {
        auto arr = nlohmann::json::array();
        for (const auto& k : keys) arr.push_back(key_info_json(k));
        print_json(arr);
        return;
    }
    if (keys.empty()) std::cout << "no keys\n";
    for (const auto& k : keys) std::cout << key_info_line(k) << "\n";
}

struct PublicOptions {
    std::string key;
    std::string out_cert;
    std::string out_key;
};

void run_public(const CommonOptions& common, const PublicOptions& o) {
    auto client = connect(common);
    const auto p = client.get_public(o.key);
    const std::string key_pem = pem("PUBLIC KEY", p.spki);
    std::string chain_pem;
    std::vector<std::string> certs;
    for (const auto& c : p.certificates) {
        certs.push_back(pem("CERTIFICATE", c));
        chain_pem += certs.back();
    }
    if (!o.out_cert.empty() && certs.empty())
        throw CtlError(kExitDaemon, "key " + p.id + " has no certificate chain");
    const auto bytes = [](const std::string& s) { return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
    if (!o.out_key.empty()) write_file(o.out_key, bytes(key_pem));
    if (!o.out_cert.empty()) write_file(o.out_cert, bytes(chain_pem));
    if (common.json) {
        print_json({{"id", p.id},
                    {"kind", kind_name(p.kind)},
                    {"bits", p.bits},
                    {"public_key_pem", key_pem},
                    {"certificates_pem", certs}});
        return;
    }
    if (o.out_key.empty() && o.out_cert.empty()) std::cout << key_pem << chain_pem;
}

void run_discover(const CommonOptions& common) {
    auto client = connect(common);
    const uint32_t added = client.discover();
    if (common.json)
        print_json({{"added", added}});
    else
        std::cout << added << (added == 1 ? " new key\n" : " new keys\n");
}

void run_wait(const CommonOptions& common, const std::string& key, uint32_t timeout_s) {
    if (timeout_s == 0 || timeout_s > 3600) usage_error("--timeout is 1..3600 seconds");
    auto client = connect(common);
    const auto k = client.wait(key, timeout_s * 1000);
    if (common.json)
        print_json(key_info_json(k));
    else
        std::cout << key_info_line(k) << "\n";
}

void run_watch(const CommonOptions& common) {
    auto client = connect(common);
    client.subscribe();
    for (;;) {
        const auto ev = client.next_event(-1);
        if (!ev) continue;
        const char* type = ev->type == KC_EVENT_ADDED ? "added" : ev->type == KC_EVENT_REMOVED ? "removed" : "event";
        const auto now = static_cast<uint64_t>(std::time(nullptr));
        if (common.json) {
            nlohmann::json j = {{"time", rfc3339(now)}, {"event", type}, {"key", key_info_json(ev->key)}};
            if (!ev->reason.empty()) j["reason"] = ev->reason;
            if (ev->lost != 0) j["lost"] = ev->lost;
            std::cout << j.dump() << std::endl;
        } else {
            std::cout << rfc3339(now) << " " << type << " " << ev->key.id << " "
                      << printable(ev->key.label.empty() ? "(no label)" : ev->key.label);
            if (!ev->reason.empty()) std::cout << " (" << printable(ev->reason) << ")";
            if (ev->lost != 0) std::cout << " [" << ev->lost << " earlier events lost]";
            std::cout << std::endl;
        }
    }
}

}  // namespace

void add_info_commands(CLI::App& app, CommonOptions& common, Action& action) {
    auto* status = app.add_subcommand("status", "Show keychaind's version, backend, key count and lock state");
    add_common_options(status, common);
    status->callback([&] { action = [&] { run_status(common); }; });

    auto all = std::make_shared<bool>(false);
    auto* list = app.add_subcommand("list", "List the keys in the keychain");
    list->add_flag("--all", *all, "also list keys that are known but gone");
    add_common_options(list, common);
    list->callback([&, all] { action = [&, all] { run_list(common, *all); }; });

    auto po = std::make_shared<PublicOptions>();
    auto* pub = app.add_subcommand("public", "Print a key's public key and certificate chain (PEM)");
    pub->add_option("KEY", po->key, "the key")->required();
    pub->add_option("--out-cert", po->out_cert, "write the certificate chain (PEM) to FILE")->type_name("FILE");
    pub->add_option("--out-key", po->out_key, "write the public key (PEM) to FILE")->type_name("FILE");
    add_common_options(pub, common);
    pub->callback([&, po] { action = [&, po] { run_public(common, *po); }; });

    auto* discover = app.add_subcommand("discover", "Rescan the key sources now (admin)");
    add_common_options(discover, common);
    discover->callback([&] { action = [&] { run_discover(common); }; });

    auto wait_key = std::make_shared<std::string>();
    auto wait_timeout = std::make_shared<uint32_t>(30);
    auto* wait = app.add_subcommand("wait", "Wait until a key is present (exit 4 on timeout)");
    wait->add_option("KEY", *wait_key, "the key")->required();
    wait->add_option("--timeout", *wait_timeout, "seconds to wait (default 30, at most 3600)")->type_name("SECONDS");
    add_common_options(wait, common);
    wait->callback([&, wait_key, wait_timeout] {
        action = [&, wait_key, wait_timeout] { run_wait(common, *wait_key, *wait_timeout); };
    });

    auto* watch = app.add_subcommand("watch", "Print key added/removed events until interrupted");
    add_common_options(watch, common);
    watch->callback([&] { action = [&] { run_watch(common); }; });
}

}  // namespace keychain::ctl
