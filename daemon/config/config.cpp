// TOML config parsing and validation, every error with file and line.
#include "config/config.h"

#include <fcntl.h>
#include <grp.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include "core/unique_fd.h"

namespace keychaind {
namespace {

namespace fs = std::filesystem;

// The whole file, read safely: it may be replaced at any moment by whoever edits it (a reload
// then reads what is there), so no symlink, nothing but a regular file, and a size cap. O_NONBLOCK:
// a FIFO put in its place must not hang the daemon's event loop at SIGHUP.
std::string read_config_text(const std::string& file) {
    const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        const int err = errno;
        if (err == ELOOP) throw ConfigError(file + ": is a symbolic link; name the file itself");
        throw ConfigError(file + ": cannot open: " + std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw ConfigError(file + ": cannot stat: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw ConfigError(file + ": is not a regular file");
    const std::string too_large = file + ": is larger than " + std::to_string(kMaxConfigFileBytes) + " bytes";
    if (st.st_size > static_cast<off_t>(kMaxConfigFileBytes)) throw ConfigError(too_large);
    std::string text(kMaxConfigFileBytes + 1, '\0');
    size_t got = 0;
    for (;;) {
        const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw ConfigError(file + ": cannot read: " + std::strerror(errno));
        if (n == 0) break;
        got += static_cast<size_t>(n);
        if (got > kMaxConfigFileBytes) throw ConfigError(too_large);  // it grew since fstat
    }
    text.resize(got);
    return text;
}

class Reader {
public:
    Reader(std::string file, std::string base_dir) : file_(std::move(file)), base_(std::move(base_dir)) {}

    [[noreturn]] void fail(const toml::node* n, const std::string& why) const {
        if (n != nullptr && n->source().begin.line != 0)
            throw ConfigError(file_ + ":" + std::to_string(n->source().begin.line) + ": " + why);
        throw ConfigError(file_ + ": " + why);
    }

    void check_keys(const toml::table& t, const std::string& where, std::set<std::string> allowed) const {
        for (const auto& [k, v] : t)
            if (!allowed.count(std::string(k.str())))
                fail(&v, "unknown option \"" + std::string(k.str()) + "\" in " + where);
    }

    std::string str(const toml::table& t, const char* key, const std::string& def) const {
        const toml::node* n = t.get(key);
        if (n == nullptr) return def;
        if (!n->is_string()) fail(n, std::string(key) + " must be a string");
        return n->as_string()->get();
    }
    bool boolean(const toml::table& t, const char* key, bool def) const {
        const toml::node* n = t.get(key);
        if (n == nullptr) return def;
        if (!n->is_boolean()) fail(n, std::string(key) + " must be true or false");
        return n->as_boolean()->get();
    }
    uint32_t number(const toml::table& t, const char* key, uint32_t def, int64_t lo, int64_t hi) const {
        const toml::node* n = t.get(key);
        if (n == nullptr) return def;
        if (!n->is_integer()) fail(n, std::string(key) + " must be an integer");
        const int64_t v = n->as_integer()->get();
        if (v < lo || v > hi)
            fail(n, std::string(key) + " is " + std::to_string(v) + "; allowed " + std::to_string(lo) +
                        " to " + std::to_string(hi));
        return static_cast<uint32_t>(v);
    }
    std::string path(const toml::table& t, const char* key, const std::string& def) const {
        const std::string p = str(t, key, def);
        return resolve(p, t.get(key));
    }
    std::string resolve(const std::string& p, const toml::node* n) const {
        if (p.empty()) fail(n, "a path must not be empty");
        if (p.find('\0') != std::string::npos) fail(n, "a path must not contain NUL");
        return fs::path(p).is_absolute() ? p : (fs::path(base_) / p).lexically_normal().string();
    }
    const toml::table* table(const toml::table& t, const char* key) const {
        const toml::node* n = t.get(key);
        if (n == nullptr) return nullptr;
        if (!n->is_table()) fail(n, std::string("[") + key + "] must be a table");
        return n->as_table();
    }

private:
    std::string file_;
    std::string base_;
};

log::Level parse_level(const Reader& r, const toml::node* n, const std::string& s) {
    if (s == "debug") return log::Level::Debug;
    if (s == "info") return log::Level::Info;
    if (s == "warning") return log::Level::Warning;
    if (s == "error") return log::Level::Error;
    r.fail(n, "log_level \"" + s + "\" is not one of debug, info, warning, error");
}

bool is_hex4(const std::string& s) {
    return s.size() == 4 && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

void read_devices(const Reader& r, const toml::table& d, DevicesConfig& c) {
    r.check_keys(d, "[devices]", {"enable", "allow_non_usb", "require_tag", "filesystems", "match",
                                  "read_timeout_ms"});
    c.enable = r.boolean(d, "enable", c.enable);
    c.allow_non_usb = r.boolean(d, "allow_non_usb", c.allow_non_usb);
    c.require_tag = r.boolean(d, "require_tag", c.require_tag);
    c.read_timeout_ms = r.number(d, "read_timeout_ms", c.read_timeout_ms, 100, 600 * 1000);
    if (const toml::node* fss = d.get("filesystems")) {
        if (!fss->is_array()) r.fail(fss, "filesystems must be an array of filesystem types");
        const auto& known = supported_device_filesystems();
        c.filesystems.clear();
        for (const auto& e : *fss->as_array()) {
            if (!e.is_string()) r.fail(&e, "filesystems must hold strings");
            const std::string t = e.as_string()->get();
            if (std::find(known.begin(), known.end(), t) == known.end()) {
                std::string list;
                for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
                r.fail(&e, "filesystem \"" + t + "\" is not one keychaind mounts; choose from " + list);
            }
            c.filesystems.push_back(t);
        }
    }
    if (const toml::node* ms = d.get("match")) {
        if (!ms->is_array_of_tables()) r.fail(ms, "[[devices.match]] must be an array of tables");
        for (const auto& e : *ms->as_array()) {
            const toml::table& t = *e.as_table();
            r.check_keys(t, "[[devices.match]]", {"serial", "vendor_id", "model_id", "fs_uuid", "fs_label"});
            DeviceMatch m;
            m.serial = r.str(t, "serial", "");
            m.vendor_id = r.str(t, "vendor_id", "");
            m.model_id = r.str(t, "model_id", "");
            m.fs_uuid = r.str(t, "fs_uuid", "");
            m.fs_label = r.str(t, "fs_label", "");
            if (m.serial.empty() && m.vendor_id.empty() && m.model_id.empty() && m.fs_uuid.empty() &&
                m.fs_label.empty())
                r.fail(&e, "a [[devices.match]] rule needs at least one of serial, vendor_id, model_id, "
                           "fs_uuid, fs_label");
            if (!m.vendor_id.empty() && !is_hex4(m.vendor_id))
                r.fail(t.get("vendor_id"), "vendor_id \"" + m.vendor_id + "\" is not 4 hex digits like \"0781\"");
            if (!m.model_id.empty() && !is_hex4(m.model_id))
                r.fail(t.get("model_id"), "model_id \"" + m.model_id + "\" is not 4 hex digits like \"5583\"");
            c.match.push_back(std::move(m));
        }
    }
}

// Checks a pkcs11: URI with p11-kit's own parser, as the token driver will read it. `what` allows
// token attributes only, or object attributes too (an object URI may name its token as well).
void check_pkcs11_uri(const Reader& r, const toml::node* n, const std::string& text, bool object) {
    const std::unique_ptr<P11KitUri, decltype(&p11_kit_uri_free)> uri(p11_kit_uri_new(), p11_kit_uri_free);
    const auto type = object ? P11_KIT_URI_FOR_OBJECT_ON_TOKEN : P11_KIT_URI_FOR_TOKEN;
    const int rc = p11_kit_uri_parse(text.c_str(), type, uri.get());
    if (rc != P11_KIT_URI_OK)
        r.fail(n, "\"" + text + "\" is not a pkcs11: URI: " + p11_kit_uri_message(rc));
    if (p11_kit_uri_any_unrecognized(uri.get()))
        r.fail(n, "\"" + text + "\" has attributes keychaind does not match on; " +
                      (object ? "use token, manufacturer, serial, model, object, id and type"
                              : "use token, manufacturer, serial and model (objects go in keys)"));
    if (p11_kit_uri_get_pin_value(uri.get()) != nullptr || p11_kit_uri_get_pin_source(uri.get()) != nullptr)
        r.fail(n, "\"" + text + "\" carries a PIN; give it in pin_file or with PROVIDE instead");
}

bool is_registry_name(const std::string& s) {
    return !s.empty() && s != "." && s != ".." &&
           s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") ==
               std::string::npos;
}

void read_pkcs11(const Reader& r, const toml::table& p, Pkcs11Config& c) {
    r.check_keys(p, "[pkcs11]", {"module_paths", "poll_ms", "call_timeout_ms", "token"});
    c.poll_ms = r.number(p, "poll_ms", c.poll_ms, 100, 60 * 1000);
    c.call_timeout_ms = r.number(p, "call_timeout_ms", c.call_timeout_ms, 100, 600 * 1000);
    if (const toml::node* mps = p.get("module_paths")) {
        if (!mps->is_array()) r.fail(mps, "module_paths must be an array of absolute paths");
        for (const auto& e : *mps->as_array()) {
            if (!e.is_string()) r.fail(&e, "module_paths must hold strings");
            const std::string m = e.as_string()->get();
            if (m.empty() || m.find('\0') != std::string::npos || !fs::path(m).is_absolute())
                r.fail(&e, "module path \"" + m + "\" is not an absolute path");
            c.module_paths.push_back(fs::path(m).lexically_normal().string());
        }
    }
    const toml::node* ts = p.get("token");
    if (ts == nullptr) return;
    if (!ts->is_array_of_tables()) r.fail(ts, "[[pkcs11.token]] must be an array of tables");
    std::set<std::string> names;
    for (const auto& e : *ts->as_array()) {
        const toml::table& t = *e.as_table();
        r.check_keys(t, "[[pkcs11.token]]", {"name", "module", "uri", "keys", "pin_file", "sessions"});
        TokenConfig tc;
        tc.name = r.str(t, "name", "");
        if (tc.name.empty()) r.fail(&e, "a token needs a name");
        if (tc.name.rfind("pkcs11:", 0) == 0 ||
            std::any_of(tc.name.begin(), tc.name.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; }))
            r.fail(t.get("name"), "token name \"" + tc.name + "\" must not start with \"pkcs11:\" or hold control characters");
        if (!names.insert(tc.name).second) r.fail(&e, "token \"" + tc.name + "\" is defined twice");
        const std::string who = "token \"" + tc.name + "\"";
        tc.module = r.str(t, "module", "");
        if (tc.module.empty()) r.fail(&e, who + " needs a module (a p11-kit module name such as \"softhsm2\", or an absolute path)");
        if (tc.module.find('/') != std::string::npos) {
            if (!fs::path(tc.module).is_absolute())
                r.fail(t.get("module"), who + ": module \"" + tc.module + "\" is neither a p11-kit module name nor an absolute path");
            tc.module = fs::path(tc.module).lexically_normal().string();
            if (std::find(c.module_paths.begin(), c.module_paths.end(), tc.module) == c.module_paths.end())
                r.fail(t.get("module"), who + ": module \"" + tc.module + "\" is not listed in [pkcs11] module_paths");
        } else if (!is_registry_name(tc.module)) {
            r.fail(t.get("module"), who + ": module \"" + tc.module + "\" is not a p11-kit module name");
        }
        tc.uri = r.str(t, "uri", "");
        if (tc.uri.empty()) r.fail(&e, who + " needs a uri such as \"pkcs11:token=" + tc.name + "\"");
        check_pkcs11_uri(r, t.get("uri"), tc.uri, false);
        if (const toml::node* ks = t.get("keys")) {
            if (!ks->is_array()) r.fail(ks, who + ": keys must be an array of pkcs11: URIs");
            for (const auto& k : *ks->as_array()) {
                if (!k.is_string()) r.fail(&k, who + ": keys must hold strings");
                const std::string text = k.as_string()->get();
                check_pkcs11_uri(r, &k, text, true);
                tc.keys.push_back(text);
            }
            if (tc.keys.empty()) r.fail(ks, who + ": keys is empty; leave it out to use every key on the token");
        }
        if (t.get("pin_file")) tc.pin_file = r.path(t, "pin_file", "");
        tc.sessions = r.number(t, "sessions", tc.sessions, 1, 64);
        c.tokens.push_back(std::move(tc));
    }
}

void read_audit(const Reader& r, const toml::table& a, AuditConfig& c) {
    r.check_keys(a, "[audit]", {"target", "file", "on_failure"});
    c.target = r.str(a, "target", c.target);
    if (c.target != "auto" && c.target != "journal" && c.target != "file" && c.target != "both" &&
        c.target != "off")
        r.fail(a.get("target"), "target \"" + c.target + "\" is not one of auto, journal, file, both, off");
    if (a.get("file")) c.file = r.path(a, "file", "");
    if ((c.target == "file" || c.target == "both") && c.file.empty())
        r.fail(a.get("target"), "target \"" + c.target + "\" needs file, the audit log's path");
    c.on_failure = r.str(a, "on_failure", c.on_failure);
    if (c.on_failure != "continue" && c.on_failure != "deny")
        r.fail(a.get("on_failure"), "on_failure \"" + c.on_failure + "\" is not one of continue, deny");
}

}  // namespace

const std::vector<std::string>& supported_device_filesystems() {
    static const std::vector<std::string> kTypes = {"vfat",  "exfat", "ext2", "ext3", "ext4",
                                                    "ntfs3", "btrfs", "xfs",  "iso9660", "udf"};
    return kTypes;
}

Config load_config(const std::string& file) { return parse_config(read_config_text(file), file); }

Config parse_config(std::string_view text, const std::string& file) {
    Config c;
    c.path = file;
    const std::string base = fs::absolute(fs::path(file)).parent_path().string();
    Reader r(file, base);
    toml::table root;
    try {
        root = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        const auto line = e.source().begin.line;
        throw ConfigError(file + (line ? ":" + std::to_string(line) : std::string()) + ": " +
                          std::string(e.description()));
    }
    r.check_keys(root, "the top level", {"daemon", "limits", "keys", "devices", "pkcs11", "audit"});

    if (const toml::table* d = r.table(root, "daemon")) {
        r.check_keys(*d, "[daemon]", {"socket", "socket_mode", "socket_group", "workers",
                                      "allow_unlocked_memory", "log_level", "policy"});
        c.socket_path = r.path(*d, "socket", c.socket_path);
        const std::string mode = r.str(*d, "socket_mode", "0660");
        size_t used = 0;
        unsigned long m = 0;
        try {
            m = std::stoul(mode, &used, 8);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != mode.size() || m > 0777)
            r.fail(d->get("socket_mode"), "socket_mode \"" + mode + "\" is not an octal mode like \"0660\"");
        if (m & 0007) r.fail(d->get("socket_mode"), "socket_mode must not grant access to others");
        c.socket_mode = static_cast<mode_t>(m);
        c.socket_group = r.str(*d, "socket_group", c.socket_group);
        if (!c.socket_group.empty() && getgrnam(c.socket_group.c_str()) == nullptr)
            r.fail(d->get("socket_group"), "socket_group \"" + c.socket_group + "\" does not exist");
        c.workers = r.number(*d, "workers", 0, 0, 256);
        c.allow_unlocked_memory = r.boolean(*d, "allow_unlocked_memory", false);
        const std::string lvl = r.str(*d, "log_level", "info");
        c.log_level = parse_level(r, d->get("log_level"), lvl);
        if (const toml::node* p = d->get("policy")) {
            c.policy_path_set = true;
            c.policy_path = r.str(*d, "policy", "");
            if (!c.policy_path.empty()) {
                c.policy_path = r.resolve(c.policy_path, p);
                std::error_code ec;
                if (!fs::exists(fs::symlink_status(c.policy_path, ec)))
                    r.fail(p, "policy file " + c.policy_path + " does not exist (policy = \"\" names the "
                              "built-in policy)");
            }
        }
    }
    if (const toml::table* l = r.table(root, "limits")) {
        r.check_keys(*l, "[limits]", {"max_frame_bytes", "max_in_flight", "max_connections_per_uid",
                                      "max_connections", "max_output_bytes", "max_wait_ms",
                                      "frame_timeout_ms"});
        c.max_frame_bytes = r.number(*l, "max_frame_bytes", c.max_frame_bytes, 1024, 1024 * 1024);
        c.max_in_flight = r.number(*l, "max_in_flight", c.max_in_flight, 1, 65536);
        c.max_connections_per_uid = r.number(*l, "max_connections_per_uid", c.max_connections_per_uid, 1, 65536);
        c.max_connections = r.number(*l, "max_connections", c.max_connections, 1, 65536);
        c.max_output_bytes = r.number(*l, "max_output_bytes", c.max_output_bytes, 64 * 1024, 1 << 30);
        c.frame_timeout_ms = r.number(*l, "frame_timeout_ms", c.frame_timeout_ms, 100, 600000);
        c.max_wait_ms = r.number(*l, "max_wait_ms", c.max_wait_ms, 1, 24 * 3600 * 1000);
    }
    if (const toml::table* k = r.table(root, "keys")) {
        r.check_keys(*k, "[keys]", {"directories", "identity"});
        if (const toml::node* dirs = k->get("directories")) {
            if (!dirs->is_array()) r.fail(dirs, "directories must be an array of paths");
            for (const auto& e : *dirs->as_array()) {
                if (!e.is_string()) r.fail(&e, "directories must hold strings");
                c.directories.push_back(r.resolve(e.as_string()->get(), &e));
            }
        }
        if (const toml::node* ids = k->get("identity")) {
            if (!ids->is_array_of_tables()) r.fail(ids, "[[keys.identity]] must be an array of tables");
            std::set<std::string> names;
            for (const auto& e : *ids->as_array()) {
                const toml::table& t = *e.as_table();
                r.check_keys(t, "[[keys.identity]]", {"name", "key", "certificate"});
                IdentityConfig ic;
                ic.name = r.str(t, "name", "");
                if (ic.name.empty()) r.fail(&e, "an identity needs a name");
                if (!names.insert(ic.name).second) r.fail(&e, "identity \"" + ic.name + "\" is defined twice");
                if (!t.get("key")) r.fail(&e, "identity \"" + ic.name + "\" needs a key path");
                ic.key_path = r.path(t, "key", "");
                if (t.get("certificate")) ic.certificate_path = r.path(t, "certificate", "");
                c.identities.push_back(std::move(ic));
            }
        }
    }
    if (const toml::table* d = r.table(root, "devices")) read_devices(r, *d, c.devices);
    if (const toml::table* p = r.table(root, "pkcs11")) read_pkcs11(r, *p, c.pkcs11);
    if (const toml::table* a = r.table(root, "audit")) read_audit(r, *a, c.audit);
    return c;
}

bool Config::uses_policy_file() const {
    return !policy_path.empty() && (policy_path_set || std::filesystem::exists(policy_path));
}

}  // namespace keychaind
