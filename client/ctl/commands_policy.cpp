// policy check, policy explain (local: read the policy file, no daemon).
#include <grp.h>
#include <pwd.h>

#include <charconv>
#include <iostream>
#include <memory>

#include "ctl.h"
#include "policy/policy.h"
#include "text_format.h"

namespace keychain::ctl {

namespace {

namespace policy = keychaind::policy;

std::string plural(size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::shared_ptr<const policy::Policy> load_policy(const std::string& path) {
    try {
        return policy::Policy::load(path);
    } catch (const policy::PolicyError& e) {
        usage_error(e.what());
    }
}

void run_check(const std::string& path) {
    const auto p = load_policy(path);
    for (const auto& w : p->warnings()) std::cerr << "warning: " << printable(w) << "\n";
    std::cout << printable(path) << ": OK (" << plural(p->rule_count(), "rule") << ", "
              << plural(p->device_rule_count(), "device rule") << ")\n";
}

struct ExplainOptions {
    std::string policy_path = policy::kDefaultPolicyPath;
    std::string uid;  // a number or a user name
    std::optional<uint32_t> gid;
    std::optional<std::string> groups;  // "4,24,110"
    std::string exe;
    std::string unit;
    std::string op;
    std::string key;
    std::string label;
    std::vector<std::string> sources;
};

std::optional<uint32_t> number(std::string_view s) {
    uint32_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

// --uid: a number or a user name; the user's primary group and groups come from the passwd and
// group databases, as a process started for that user (a login, systemd's User=) would have them.
policy::Peer peer_from(const ExplainOptions& o) {
    policy::Peer peer;
    const passwd* pw = nullptr;
    if (const auto n = number(o.uid)) {
        peer.uid = *n;
        pw = getpwuid(peer.uid);
    } else {
        pw = getpwnam(o.uid.c_str());
        if (pw == nullptr) usage_error("--uid " + o.uid + ": no such user");
        peer.uid = pw->pw_uid;
    }
    if (o.gid) {
        peer.gid = *o.gid;
    } else if (pw != nullptr) {
        peer.gid = pw->pw_gid;
    } else {
        usage_error("uid " + o.uid + " has no passwd entry: give --gid (and --groups)");
    }
    if (o.groups) {
        std::string_view rest = *o.groups;
        while (!rest.empty()) {
            const size_t comma = rest.find(',');
            const std::string_view item = rest.substr(0, comma);
            const auto g = number(item);
            if (!g) usage_error("--groups: \"" + std::string(item) + "\" is not a group id");
            peer.groups.push_back(*g);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    } else if (pw != nullptr) {
        int n = 64;
        std::vector<gid_t> gs(static_cast<size_t>(n));
        if (getgrouplist(pw->pw_name, pw->pw_gid, gs.data(), &n) < 0) {
            gs.resize(static_cast<size_t>(n));
            getgrouplist(pw->pw_name, pw->pw_gid, gs.data(), &n);
        }
        gs.resize(static_cast<size_t>(n));
        peer.groups = std::move(gs);
    }
    peer.exe = o.exe;
    peer.unit = o.unit;
    return peer;
}

std::string peer_line(const policy::Peer& p) {
    std::string out = "peer: uid " + std::to_string(p.uid) + ", gid " + std::to_string(p.gid);
    if (!p.groups.empty()) {
        out += ", groups ";
        for (size_t i = 0; i < p.groups.size(); ++i)
            out += (i == 0 ? "" : ",") + std::to_string(p.groups[i]);
    }
    out += ", exe " + (p.exe.empty() ? std::string("(unknown)") : p.exe);
    out += ", unit " + (p.unit.empty() ? std::string("(none)") : p.unit);
    return out;
}

void run_explain(const ExplainOptions& o) {
    const auto op = policy::operation_from_name(o.op);
    if (!op)
        usage_error("--op " + o.op +
                    " is not an operation (sign, decrypt, unwrap, wrap, gen-datakey, rewrap, "
                    "list, public, wait, subscribe, provide, forget, lock, unlock, discover)");
    const bool key_given = !o.key.empty() || !o.label.empty() || !o.sources.empty();
    if (policy::is_key_operation(*op) && !key_given)
        usage_error(o.op + " is decided per key: describe it with --key, --label and --source");
    if (!o.key.empty() && ((o.key.size() != 32 && o.key.size() != 64) ||
                           o.key.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
        usage_error("--key " + o.key + " is not a key id (32 or 64 hex digits)");
    for (const auto& s : o.sources)
        if (s.find(':') == std::string::npos)
            usage_error(
                "--source " + s +
                " is not KIND:LOCATION (file:/etc/keychaind/keys/a.4DKeyChain, "
                "device:SERIAL/UUID/FILE, token:pkcs11:..., identity:NAME, provided:uid=0)");

    const policy::Peer peer = peer_from(o);
    const auto p = load_policy(o.policy_path);
    const policy::KeyFacts key{o.key, o.label, o.sources};
    const auto view = policy::Policy::view_for(p, peer);
    const policy::Decision d = view.decide(*op, &key, true);

    std::cout << printable("policy: " + p->source()) << "\n" << printable(peer_line(peer)) << "\n";
    if (!policy::is_key_operation(*op) && key_given)
        std::cout << "(" << o.op
                  << " is decided on the peer alone: the key options do not count)\n";
    for (const auto& line : d.trace) std::cout << printable(line) << "\n";
    if (d.allowed) {
        std::cout << "allow by rule " << printable("\"" + std::string(d.rule) + "\"") << "\n";
        return;
    }
    if (d.rule_index)
        std::cout << "deny by rule " << printable("\"" + std::string(d.rule) + "\"") << "\n";
    else
        std::cout << "deny (default deny: no rule matches)\n";
    std::cout.flush();
    throw CtlError(kExitDenied, "");  // the verdict is printed already
}

}  // namespace

void add_policy_commands(CLI::App& app, CommonOptions& /*common*/, Action& action) {
    auto* pol =
        app.add_subcommand("policy", "Check a policy file, or explain its decision for a peer");
    pol->require_subcommand(1);

    auto check_path = std::make_shared<std::string>(policy::kDefaultPolicyPath);
    auto* check = pol->add_subcommand(
        "check", "Validate a policy file: OK, its warnings, or the error with its line");
    check->add_option("FILE", *check_path, "the policy file (default /etc/keychaind/policy.conf)");
    check->callback([&, check_path] { action = [check_path] { run_check(*check_path); }; });

    auto eo = std::make_shared<ExplainOptions>();
    auto* explain = pol->add_subcommand(
        "explain",
        "Show which rule decides an operation for a peer, and why (exit 0 allow, 6 deny)");
    explain
        ->add_option("--policy", eo->policy_path,
                     "the policy file (default /etc/keychaind/policy.conf)")
        ->type_name("FILE");
    explain->add_option("--uid", eo->uid, "the peer's uid, or a user name")
        ->type_name("UID")
        ->required();
    explain->add_option("--gid", eo->gid, "the peer's primary gid (default: the user's)")
        ->type_name("GID");
    explain
        ->add_option("--groups", eo->groups,
                     "supplementary gids, comma-separated (default: the user's groups)")
        ->type_name("G1,G2");
    explain->add_option("--exe", eo->exe, "the peer's executable (absolute path)")
        ->type_name("PATH");
    explain->add_option("--unit", eo->unit, "the peer's systemd unit, e.g. nginx.service")
        ->type_name("UNIT");
    explain->add_option("--op", eo->op, "the operation: sign, unwrap, lock, ...")
        ->type_name("OP")
        ->required();
    explain->add_option("--key", eo->key, "the key's id (hex)")->type_name("ID");
    explain->add_option("--label", eo->label, "the key's label")->type_name("LABEL");
    explain->add_option("--source", eo->sources, "a source of the key, KIND:LOCATION (repeatable)")
        ->type_name("SOURCE");
    explain->callback([&, eo] { action = [eo] { run_explain(*eo); }; });
}

}  // namespace keychain::ctl
