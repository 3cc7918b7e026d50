// The policy file: reading it safely (owner, mode, size) and its TOML, every error with file and
// line.
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <set>

#include "policy/rule.h"

namespace keychaind::policy {
namespace {

constexpr size_t kMaxNameLength = 128;
constexpr int64_t kMaxRate = 1000000;

class Reader {
  public:
    explicit Reader(const std::string& path) : path_(path) {}

    std::string at(const toml::node* n) const {
        if (n != nullptr && n->source().begin.line != 0)
            return path_ + ":" + std::to_string(n->source().begin.line) + ": ";
        return path_ + ": ";
    }
    [[noreturn]] void fail(const toml::node* n, const std::string& why) const {
        throw PolicyError(at(n) + why);
    }
    std::string warning(const toml::node* n, const std::string& what) const { return at(n) + what; }

    // Unknown keys are errors: a typo must never silently widen or narrow a rule.
    void check_keys(const toml::table& t, std::string_view where,
                    std::initializer_list<std::string_view> allowed) const {
        for (const auto& [k, v] : t) {
            if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) continue;
            std::string list;
            for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            fail(&v, "unknown field " + quoted(k.str()) + " in " + std::string(where) +
                         "; allowed: " + list);
        }
    }

    // A non-empty string.
    std::string text(const toml::node& n, const std::string& what) const {
        if (!n.is_string()) fail(&n, what + " must be a string");
        const std::string s = n.as_string()->get();
        if (s.empty()) fail(&n, what + " must not be empty");
        if (s.find('\0') != std::string::npos) fail(&n, what + " must not contain NUL");
        return s;
    }

    uint32_t id_number(const toml::node& n, const std::string& what) const {
        if (!n.is_integer()) fail(&n, what + " must be an integer or an array of integers");
        const int64_t v = n.as_integer()->get();
        if (v < 0 || v > int64_t{0xfffffffe})
            fail(&n, what + " " + std::to_string(v) + " is out of range");
        return static_cast<uint32_t>(v);
    }

    // A single value, or a non-empty array of them (any of which matches).
    void each(const toml::node& n, const std::string& what,
              const std::function<void(const toml::node&)>& fn) const {
        if (const toml::array* a = n.as_array()) {
            if (a->empty()) fail(&n, what + " must not be an empty array");
            for (const auto& e : *a) fn(e);
        } else {
            fn(n);
        }
    }

  private:
    const std::string& path_;
};

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        return u < 0x20 || u == 0x7f;
    });
}

bool is_hex(std::string_view s) {
    return s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

std::string lower(std::string s) {
    for (char& ch : s)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return s;
}

// getpwnam_r / getgrnam_r with a growing buffer. nullopt when the name does not exist; an NSS
// failure is reported in `error`.
std::optional<uint32_t> resolve(const std::string& name, bool group, std::string& error) {
    std::vector<char> buf(4096);
    for (;;) {
        int rc = 0;
        uint32_t id = 0;
        bool found = false;
        if (group) {
            struct group gr {};
            struct group* res = nullptr;
            rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res);
            if (rc == 0 && res != nullptr) {
                found = true;
                id = gr.gr_gid;
            }
        } else {
            struct passwd pw {};
            struct passwd* res = nullptr;
            rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
            if (rc == 0 && res != nullptr) {
                found = true;
                id = pw.pw_uid;
            }
        }
        if (rc == ERANGE && buf.size() < 1024 * 1024) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (found) return id;
        if (rc != 0 && rc != ENOENT && rc != ESRCH) {
            char ebuf[128];
            error = strerror_r(rc, ebuf, sizeof ebuf);
        }
        return std::nullopt;
    }
}

class PolicyReader {
  public:
    PolicyReader(const Reader& r, std::vector<std::string>& warnings)
        : r_(r), warnings_(warnings) {}

    Policy::Rule rule(const toml::table& t) {
        r_.check_keys(t, "[[rule]]", {"name", "peer", "operations", "keys", "action", "rate"});
        Policy::Rule rule;
        rule.line = t.source().begin.line;
        rule.name = name(t, "[[rule]]", rule_names_);
        const std::string who = "rule " + quoted(rule.name);

        const toml::node* peer = t.get("peer");
        if (peer == nullptr)
            r_.fail(
                &t,
                who + " needs a peer (peer = \"any\", or a table such as { user = \"www-data\" })");
        rule.peer = peer_match(*peer, who);

        const toml::node* ops = t.get("operations");
        if (ops == nullptr)
            r_.fail(&t, who + " needs operations, e.g. operations = [\"sign\", \"public\"]");
        rule.operations = operations(*ops, who);

        const toml::node* keys = t.get("keys");
        const bool key_ops = (rule.operations & key_operations()) != 0;
        if (keys == nullptr && key_ops)
            r_.fail(&t, who +
                            " needs keys (keys = \"any\", or selectors such as [{ label = "
                            "\"web-*\" }]) for " +
                            operation_list(rule.operations & key_operations()));
        if (keys != nullptr) {
            rule.keys = key_match(*keys, who);
            // Operations decided on the peer alone ignore keys: a rule that seems to narrow them
            // by key in fact decides them for every key.
            const uint32_t peer_only = rule.operations & ~key_operations();
            if (!key_ops)
                warnings_.push_back(r_.warning(keys, who + ": keys has no effect on " +
                                                         operation_list(peer_only) +
                                                         ", which are decided on the peer alone"));
            else if (peer_only != 0 && !rule.keys.any)
                warnings_.push_back(
                    r_.warning(keys, who + ": keys does not narrow " + operation_list(peer_only) +
                                         " (decided on the peer alone): the rule decides them "
                                         "whatever the key"));
        }

        if (const toml::node* a = t.get("action")) {
            const std::string action = r_.text(*a, who + ": action");
            if (action != "allow" && action != "deny")
                r_.fail(a,
                        who + ": action " + quoted(action) + " is neither \"allow\" nor \"deny\"");
            rule.allow = action == "allow";
        }
        if (const toml::node* rate = t.get("rate")) {
            if (!rule.allow) r_.fail(rate, who + ": rate applies to allow rules only");
            if (!rate->is_integer())
                r_.fail(rate, who + ": rate must be an integer (requests per second)");
            const int64_t v = rate->as_integer()->get();
            if (v < 1 || v > kMaxRate)
                r_.fail(rate, who + ": rate " + std::to_string(v) + " is out of range 1 to " +
                                  std::to_string(kMaxRate) + " (leave it out for no limit)");
            rule.rate = static_cast<uint32_t>(v);
        }
        return rule;
    }

    Policy::DeviceRule device_rule(const toml::table& t) {
        r_.check_keys(t, "[[device]]", {"name", "match", "tethered"});
        Policy::DeviceRule rule;
        rule.line = t.source().begin.line;
        rule.name = name(t, "[[device]]", device_names_);
        const std::string who = "device rule " + quoted(rule.name);
        const toml::node* m = t.get("match");
        if (m == nullptr)
            r_.fail(
                &t,
                who + " needs match (match = \"any\", or a table such as { serial = \"...\" })");
        rule.match = device_match(*m, who);
        if (const toml::node* tethered = t.get("tethered")) {
            if (!tethered->is_boolean())
                r_.fail(tethered, who + ": tethered must be true or false");
            rule.tethered = tethered->as_boolean()->get();
        }
        return rule;
    }

  private:
    std::string name(const toml::table& t, const char* what, std::set<std::string>& seen) {
        const toml::node* n = t.get("name");
        if (n == nullptr) r_.fail(&t, std::string("a ") + what + " needs a name");
        const std::string s = r_.text(*n, "name");
        if (s.size() > kMaxNameLength || has_control(s))
            r_.fail(n, "name " + quoted(s) + " must be at most " + std::to_string(kMaxNameLength) +
                           " characters without control characters");
        if (!seen.insert(s).second)
            r_.fail(n, std::string(what) + " " + quoted(s) + " is defined twice");
        return s;
    }

    PeerMatch peer_match(const toml::node& n, const std::string& who) {
        PeerMatch m;
        if (n.is_string()) {
            if (n.as_string()->get() != "any")
                r_.fail(&n,
                        who + ": peer must be \"any\" or a table such as { user = \"www-data\" }");
            m.any = true;
            return m;
        }
        const toml::table* t = n.as_table();
        if (t == nullptr)
            r_.fail(&n, who + ": peer must be \"any\" or a table such as { user = \"www-data\" }");
        r_.check_keys(*t, "peer", {"uid", "gid", "user", "group", "exe", "unit"});
        if (t->empty())
            r_.fail(&n, who + ": peer = {} names no one; write peer = \"any\" for every peer");
        if (const toml::node* v = t->get("uid")) {
            m.uids.emplace();
            r_.each(*v, who + ": uid", [&](const toml::node& e) {
                m.uids->push_back(r_.id_number(e, who + ": uid"));
            });
        }
        if (const toml::node* v = t->get("gid")) {
            m.gids.emplace();
            r_.each(*v, who + ": gid", [&](const toml::node& e) {
                m.gids->push_back(r_.id_number(e, who + ": gid"));
            });
        }
        if (const toml::node* v = t->get("user")) m.users = names(*v, who, false);
        if (const toml::node* v = t->get("group")) m.groups = names(*v, who, true);
        if (const toml::node* v = t->get("exe")) {
            m.exes.emplace();
            r_.each(*v, who + ": exe",
                    [&](const toml::node& e) { m.exes->push_back(exe(e, who)); });
        }
        if (const toml::node* v = t->get("unit")) {
            m.units.emplace();
            r_.each(*v, who + ": unit", [&](const toml::node& e) {
                const std::string unit = r_.text(e, who + ": unit");
                // Processes run in services and scopes only: another type could never match.
                const auto ends_with = [&](std::string_view suffix) {
                    return unit.size() > suffix.size() &&
                           unit.compare(unit.size() - suffix.size(), suffix.size(), suffix) == 0;
                };
                if (unit.find('/') != std::string::npos || has_control(unit) ||
                    !(ends_with(".service") || ends_with(".scope")))
                    r_.fail(
                        &e,
                        who + ": unit " + quoted(unit) +
                            " is not the name of a service or scope, such as \"nginx.service\"");
                m.units->push_back(unit);
            });
        }
        return m;
    }

    std::vector<NamedId> names(const toml::node& n, const std::string& who, bool group) {
        const char* what = group ? "group" : "user";
        std::vector<NamedId> out;
        r_.each(n, who + ": " + what, [&](const toml::node& e) {
            NamedId id;
            id.name = r_.text(e, who + ": " + what);
            std::string error;
            const auto resolved = resolve(id.name, group, error);
            id.known = resolved.has_value();
            id.id = resolved.value_or(0);
            if (!id.known) {
                const std::string why = error.empty() ? std::string("no ") + what + " " +
                                                            quoted(id.name) + " on this system"
                                                      : std::string("cannot look up ") + what +
                                                            " " + quoted(id.name) + ": " + error;
                unknown_.push_back({&e, who + ": " + why});
            }
            out.push_back(std::move(id));
        });
        // Said once the whole field is read: whether the rule can still match depends on the
        // others.
        const bool none =
            std::none_of(out.begin(), out.end(), [](const NamedId& i) { return i.known; });
        for (auto& [node, text] : unknown_)
            warnings_.push_back(r_.warning(
                node, text + (none ? "; the rule never matches" : "; that name never matches")));
        unknown_.clear();
        return out;
    }

    std::string exe(const toml::node& n, const std::string& who) {
        const std::string path = r_.text(n, who + ": exe");
        if (path.front() != '/')
            r_.fail(&n, who + ": exe " + quoted(path) + " is not an absolute path");
        // The kernel reports the resolved path: a symlink named here could never match.
        if (char* real = realpath(path.c_str(), nullptr)) {
            const std::string resolved = real;
            free(real);
            if (resolved != path)
                warnings_.push_back(r_.warning(
                    &n, who + ": exe " + quoted(path) + " resolves to " + quoted(resolved) +
                            ", the path a process shows; the rule names the other"));
        }
        return path;
    }

    uint32_t operations(const toml::node& n, const std::string& who) {
        uint32_t ops = 0;
        const auto one = [&](const toml::node& e) {
            const std::string name = r_.text(e, who + ": an operation");
            if (name == "all") {
                ops |= kAllOperations;
            } else if (name == "admin") {
                ops |= admin_operations();
            } else if (const auto op = operation_from_name(name)) {
                ops |= op_bit(*op);
            } else {
                r_.fail(&e, who + ": unknown operation " + quoted(name) + "; use " +
                                operation_list(kAllOperations) + ", admin or all");
            }
        };
        r_.each(n, who + ": operations", one);
        return ops;
    }

    KeyMatch key_match(const toml::node& n, const std::string& who) {
        KeyMatch m;
        if (n.is_string()) {
            if (n.as_string()->get() != "any")
                r_.fail(&n, who +
                                ": keys must be \"any\" or an array of selectors such as [{ label "
                                "= \"web-*\" }]");
            m.any = true;
            return m;
        }
        const toml::array* a = n.as_array();
        if (a != nullptr && a->empty())
            r_.fail(&n, who + ": keys = [] selects no key; give selectors, or keys = \"any\"");
        if (a == nullptr || !a->is_array_of_tables())
            r_.fail(&n, who +
                            ": keys must be \"any\" or an array of selectors such as [{ label = "
                            "\"web-*\" }]");
        for (const auto& e : *a) m.selectors.push_back(selector(*e.as_table(), who));
        return m;
    }

    KeySelector selector(const toml::table& t, const std::string& who) {
        r_.check_keys(t, "a key selector", {"id", "label", "source", "device", "token"});
        if (t.empty())
            r_.fail(
                &t,
                who + ": a key selector needs at least one of id, label, source, device, token");
        KeySelector s;
        if (const toml::node* v = t.get("id")) {
            const std::string id = r_.text(*v, who + ": id");
            if ((id.size() != 32 && id.size() != 64) || !is_hex(id))
                r_.fail(v, who + ": id " + quoted(id) +
                               " is not a key id (32 or 64 hex digits, as keychainctl list shows)");
            s.id = lower(id);
        }
        if (const toml::node* v = t.get("label")) s.label_glob = r_.text(*v, who + ": label");
        if (const toml::node* v = t.get("source")) {
            const std::string kind = r_.text(*v, who + ": source");
            s.source = source_kind_from_name(kind);
            if (!s.source)
                r_.fail(v, who + ": source " + quoted(kind) +
                               " is not one of file, identity, provided, device, token");
        }
        if (const toml::node* v = t.get("device")) {
            const toml::table* d = v->as_table();
            if (d == nullptr)
                r_.fail(
                    v,
                    who +
                        ": device must be a table such as { serial = \"...\", fs_uuid = \"...\" }");
            r_.check_keys(*d, "a key selector's device", {"serial", "fs_uuid"});
            if (d->empty()) r_.fail(v, who + ": device needs serial, fs_uuid or both");
            DeviceSelector ds;
            if (const toml::node* x = d->get("serial"))
                ds.serial = r_.text(*x, who + ": device serial");
            if (const toml::node* x = d->get("fs_uuid"))
                ds.fs_uuid = r_.text(*x, who + ": device fs_uuid");
            s.device = std::move(ds);
        }
        if (const toml::node* v = t.get("token")) {
            s.token_text = r_.text(*v, who + ": token");
            std::string error;
            s.token = parse_token_selector(s.token_text, error);
            if (!s.token) r_.fail(v, who + ": token " + error);
        }
        return s;
    }

    DeviceMatch device_match(const toml::node& n, const std::string& who) {
        DeviceMatch m;
        if (n.is_string()) {
            if (n.as_string()->get() != "any")
                r_.fail(&n,
                        who + ": match must be \"any\" or a table such as { serial = \"...\" }");
            m.any = true;
            return m;
        }
        const toml::table* t = n.as_table();
        if (t == nullptr)
            r_.fail(&n, who + ": match must be \"any\" or a table such as { serial = \"...\" }");
        r_.check_keys(*t, "match", {"vendor_id", "model_id", "serial", "fs_uuid", "fs_label"});
        if (t->empty())
            r_.fail(&n,
                    who + ": match = {} names no device; write match = \"any\" for every device");
        const auto hex4 = [&](const char* field) -> std::optional<std::string> {
            const toml::node* v = t->get(field);
            if (v == nullptr) return std::nullopt;
            const std::string s = r_.text(*v, who + ": " + field);
            if (s.size() != 4 || !is_hex(s))
                r_.fail(
                    v, who + ": " + field + " " + quoted(s) + " is not 4 hex digits like \"0781\"");
            return lower(s);
        };
        const auto plain = [&](const char* field) -> std::optional<std::string> {
            const toml::node* v = t->get(field);
            if (v == nullptr) return std::nullopt;
            return r_.text(*v, who + ": " + field);
        };
        m.vendor_id = hex4("vendor_id");
        m.model_id = hex4("model_id");
        m.serial = plain("serial");
        m.fs_uuid = plain("fs_uuid");
        m.fs_label = plain("fs_label");
        return m;
    }

    const Reader& r_;
    std::vector<std::string>& warnings_;
    std::set<std::string> rule_names_, device_names_;
    std::vector<std::pair<const toml::node*, std::string>> unknown_;
};

// An array of tables under `key` at the top level ([[rule]], [[device]]); none when absent.
const toml::array* tables(const Reader& r, const toml::table& root, const char* key) {
    const toml::node* n = root.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array_of_tables())
        r.fail(n, std::string("write each ") + key + " as [[" + key + "]] (an array of tables)");
    return n->as_array();
}

}  // namespace

std::shared_ptr<const Policy> Policy::parse(std::string_view text, const std::string& path) {
    const Reader r(path);
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        const auto line = e.source().begin.line;
        throw PolicyError(path + (line != 0 ? ":" + std::to_string(line) : std::string()) + ": " +
                          std::string(e.description()));
    }
    r.check_keys(root, "the top level (a policy file holds [[rule]] and [[device]] tables)",
                 {"rule", "device"});

    auto policy = std::make_shared<Policy>();
    policy->source_ = path;
    PolicyReader reader(r, policy->warnings_);
    if (const toml::array* rules = tables(r, root, "rule"))
        for (const auto& t : *rules) policy->rules_.push_back(reader.rule(*t.as_table()));
    if (const toml::array* devices = tables(r, root, "device"))
        for (const auto& t : *devices)
            policy->device_rules_.push_back(reader.device_rule(*t.as_table()));
    if (policy->rules_.empty())
        policy->warnings_.push_back(path + ": no [[rule]]: every request is denied");
    return policy;
}

}  // namespace keychaind::policy
