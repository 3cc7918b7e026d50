// Reading the module's config file and the environment.
#include "module_config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <system_error>

#include "cryptoki.h"

#ifndef KEYCHAIND_PKCS11_DEFAULT_CONFIG
#error "KEYCHAIND_PKCS11_DEFAULT_CONFIG must name the installed config file"
#endif

namespace keychaind::pkcs11 {
namespace {

// A config file is a few lines; anything this big is a mistake, not a config.
constexpr size_t kMaxConfigBytes = size_t{64} * 1024;

[[noreturn]] void fail(const std::string& what) { throw Pkcs11Error(CKR_GENERAL_ERROR, what); }

// strerror() is not thread-safe; the module runs in other people's threads.
std::string errno_text() { return std::system_category().message(errno); }

std::string where(const std::string& origin, const toml::node& n) {
    std::ostringstream s;
    s << origin << " line " << n.source().begin.line;
    return s.str();
}

// Reads the file; false when it does not exist. Refuses what is not a small regular file.
bool read_config_file(const std::string& path, std::string& out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) return false;
        fail("module config " + path + ": " + errno_text());
    }
    struct FdCloser {
        int fd;
        ~FdCloser() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (fstat(fd, &st) != 0) fail("module config " + path + ": " + errno_text());
    if (!S_ISREG(st.st_mode)) fail("module config " + path + " is not a regular file");
    if (static_cast<size_t>(st.st_size) > kMaxConfigBytes)
        fail("module config " + path + " is " + std::to_string(st.st_size) +
             " bytes, over the 64 KiB limit");
    out.assign(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("module config " + path + ": " + errno_text());
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    out.resize(done);
    return true;
}

// The text of a config file (TOML: socket, token_label, timeout_ms); `origin` names it in errors.
ModuleConfig parse_module_config(const std::string& text, const std::string& origin) {
    toml::table t;
    try {
        t = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        std::ostringstream s;
        s << origin << " line " << e.source().begin.line << ": " << e.description();
        fail(s.str());
    }
    ModuleConfig c;
    for (const auto& [key, node] : t) {
        const std::string name(key.str());
        if (name == "socket") {
            const auto v = node.value<std::string>();
            if (!v || v->empty() || (*v)[0] != '/')
                fail(where(origin, node) + ": socket must be an absolute path");
            c.socket_path = *v;
        } else if (name == "token_label") {
            const auto v = node.value<std::string>();
            if (!v || v->empty())
                fail(where(origin, node) + ": token_label must be a non-empty string");
            if (v->size() > 32)
                fail(where(origin, node) + ": token_label is " + std::to_string(v->size()) +
                     " bytes, over PKCS#11's 32");
            c.token_label = *v;
        } else if (name == "timeout_ms") {
            const auto v = node.value<int64_t>();
            if (!v || *v < 100 || *v > 600000)
                fail(where(origin, node) + ": timeout_ms must be a number from 100 to 600000");
            c.timeout_ms = static_cast<uint32_t>(*v);
        } else {
            fail(where(origin, node) + ": unknown setting '" + name +
                 "' (known: socket, token_label, timeout_ms)");
        }
    }
    return c;
}

}  // namespace

ModuleConfig load_module_config() {
    ModuleConfig c;
    const char* env_path = secure_getenv("KEYCHAIND_PKCS11_CONFIG");
    const bool from_env = env_path != nullptr && *env_path != '\0';
    const std::string path = from_env ? env_path : KEYCHAIND_PKCS11_DEFAULT_CONFIG;
    std::string text;
    if (read_config_file(path, text)) {
        c = parse_module_config(text, path);
    } else if (from_env) {
        fail("module config " + path + " (from KEYCHAIND_PKCS11_CONFIG) does not exist");
    }
    if (const char* s = secure_getenv("KEYCHAIND_SOCKET"); s != nullptr && *s != '\0')
        c.socket_path = s;
    return c;
}

}  // namespace keychaind::pkcs11
