// Module file checks (owner, mode, symlinks up to /) and p11-kit registry lookups.
#include "token/module_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/log.h"
#include "core/unique_fd.h"
#include "token/pkcs11_error.h"

#ifndef KEYCHAIND_P11KIT_PACKAGE_MODULES
#define KEYCHAIND_P11KIT_PACKAGE_MODULES "/usr/share/p11-kit/modules"
#endif
#ifndef KEYCHAIND_P11KIT_SYSTEM_MODULES
#define KEYCHAIND_P11KIT_SYSTEM_MODULES "/etc/pkcs11/modules"
#endif
#ifndef KEYCHAIND_P11KIT_MODULE_DIR
#define KEYCHAIND_P11KIT_MODULE_DIR "/usr/lib/x86_64-linux-gnu/pkcs11"
#endif

namespace keychaind::token {
namespace {

constexpr size_t kMaxRegistrationSize = 64 * 1024;

std::string mode_text(mode_t m) {
    char b[8];
    std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(m & 07777));
    return b;
}

std::string errno_text(int err) {
    char buf[128];
    return strerror_r(err, buf, sizeof buf);
}

bool trusted_owner(const struct stat& st, uid_t trusted_uid) {
    return st.st_uid == 0 || st.st_uid == trusted_uid;
}

// One directory on the way down from /: root-owned and not writable by others, or sticky.
void check_directory(const std::string& dir, uid_t trusted_uid) {
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0) throw TokenFault("directory " + dir + ": " + errno_text(errno));
    if (!S_ISDIR(st.st_mode)) throw TokenFault(dir + " is not a directory");
    if (!trusted_owner(st, trusted_uid))
        throw TokenFault("directory " + dir + " is owned by uid " + std::to_string(st.st_uid) + ", not root");
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
        throw TokenFault("directory " + dir + " is writable by group or others (mode " + mode_text(st.st_mode) + ")");
}

void check_file(const std::string& file, const struct stat& st, uid_t trusted_uid) {
    if (S_ISLNK(st.st_mode)) throw TokenFault(file + " is a symlink");
    if (!S_ISREG(st.st_mode)) throw TokenFault(file + " is not a regular file");
    if (!trusted_owner(st, trusted_uid))
        throw TokenFault(file + " is owned by uid " + std::to_string(st.st_uid) + ", not root");
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        throw TokenFault(file + " is writable by group or others (mode " + mode_text(st.st_mode) + ")");
}

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

// The "module:" value of one registration file; empty when the file is absent or has none.
std::string module_line(const std::string& file, uid_t trusted_uid) {
    UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) return {};
        throw TokenFault("module registration " + file + ": " + errno_text(errno));
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) throw TokenFault("module registration " + file + ": " + errno_text(errno));
    check_file("module registration " + file, st, trusted_uid);
    if (static_cast<size_t>(st.st_size) > kMaxRegistrationSize)
        throw TokenFault("module registration " + file + " is over 64 KiB");
    std::string text(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    text.resize(got);
    std::string value;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        const std::string line = trim(text.substr(pos, end - pos));
        pos = end + 1;
        if (line.empty() || line[0] == '#') continue;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        if (trim(line.substr(0, colon)) == "module") value = trim(line.substr(colon + 1));
    }
    return value;
}

}  // namespace

std::string checked_module_path(const std::string& path, uid_t trusted_uid) {
    if (path.empty() || path[0] != '/') throw TokenFault(path + " is not an absolute path");
    const size_t slash = path.rfind('/');
    const std::string base = path.substr(slash + 1);
    if (base.empty() || base == "." || base == "..") throw TokenFault(path + " does not name a file");
    const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    const std::unique_ptr<char, decltype(&std::free)> real(realpath(dir.c_str(), nullptr), std::free);
    if (!real) throw TokenFault("directory " + dir + ": " + errno_text(errno));
    const std::string real_dir = real.get();
    // Every directory from / down to the module's own.
    check_directory("/", trusted_uid);
    for (size_t p = real_dir.find('/', 1); ; p = real_dir.find('/', p + 1)) {
        const std::string prefix = p == std::string::npos ? real_dir : real_dir.substr(0, p);
        if (prefix.size() > 1) check_directory(prefix, trusted_uid);
        if (p == std::string::npos) break;
    }
    const std::string file = (real_dir == "/" ? "" : real_dir) + "/" + base;
    struct stat st {};
    if (lstat(file.c_str(), &st) != 0) throw TokenFault(file + ": " + errno_text(errno));
    check_file(file, st, trusted_uid);
    return file;
}

const ModuleRegistryDirs& system_module_registry() {
    static const ModuleRegistryDirs dirs{{KEYCHAIND_P11KIT_PACKAGE_MODULES, KEYCHAIND_P11KIT_SYSTEM_MODULES},
                                         KEYCHAIND_P11KIT_MODULE_DIR};
    return dirs;
}

std::string registered_module_path(const std::string& name, const ModuleRegistryDirs& dirs) {
    std::string module;
    std::string searched;
    for (const auto& dir : dirs.config_dirs) {
        const std::string file = dir + "/" + name + ".module";
        searched += (searched.empty() ? "" : ", ") + file;
        if (std::string m = module_line(file, geteuid()); !m.empty()) module = std::move(m);
    }
    if (module.empty())
        throw TokenFault("no p11-kit module is registered as \"" + log::escape(name) + "\" (looked for " +
                         searched + " with a \"module:\" line)");
    return module[0] == '/' ? module : dirs.module_dir + "/" + module;
}

}  // namespace keychaind::token
