// Removable-device fixtures: udevd, images, loop devices, /proc figures, protocol helpers.
#include "media_fixtures.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "test_keys.h"

namespace keychaind::test {
namespace {

using wire::Opcode;
using wire::Tag;

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string proc_path(pid_t pid, const char* what) {
    return pid == 0 ? std::string("/proc/self/") + what
                    : "/proc/" + std::to_string(pid) + "/" + what;
}

std::string joined(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

// The systemd-udevd these tests run against: found running, or started here and stopped by pid.
class UdevdKeeper {
public:
    UdevdKeeper() {
        if (run_command({"udevadm", "control", "--ping"}).status == 0) return;
        std::string binary;
        for (const char* candidate :
             {"/lib/systemd/systemd-udevd", "/usr/lib/systemd/systemd-udevd"})
            if (access(candidate, X_OK) == 0) binary = candidate;
        if (binary.empty())
            throw std::runtime_error(
                "systemd-udevd is not installed (Debian package \"udev\"); the device tests need "
                "it");
        const char* tmp = std::getenv("TMPDIR");
        log_ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
               "/keychaind-test-udevd-" + std::to_string(getpid()) + ".log";
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
        if (pid_ == 0) {
            const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
            }
            execl(binary.c_str(), binary.c_str(), nullptr);
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("systemd-udevd exited at start (status " +
                                         std::to_string(status) + "):\n" + read_text(log_));
            }
            if (run_command({"udevadm", "control", "--ping"}).status == 0) {
                std::printf("started systemd-udevd (pid %d) for the device tests\n",
                            static_cast<int>(pid_));
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        stop();
        throw std::runtime_error(
            "systemd-udevd did not answer udevadm control --ping within 15 s:\n" + read_text(log_));
    }
    ~UdevdKeeper() { stop(); }

private:
    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        int status = 0;
        for (int i = 0; i < 500 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (waitpid(pid_, &status, WNOHANG) == 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
        }
        pid_ = -1;
        unlink(log_.c_str());
    }
    pid_t pid_ = -1;
    std::string log_;
};

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(pipefd[1]);
    CommandResult r;
    char buf[4096];
    for (;;) {
        const ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        r.output.append(buf, static_cast<size_t>(n));
    }
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string must_run(const std::vector<std::string>& argv) {
    CommandResult r = run_command(argv);
    if (r.status != 0)
        throw std::runtime_error(joined(argv) + " failed (" + std::to_string(r.status) +
                                 "): " + r.output);
    return r.output;
}

void require_udevd() {
    static UdevdKeeper keeper;  // lives until the process exits
}

void udev_settle() { must_run({"udevadm", "settle", "--timeout=20"}); }

std::string random_uuid() {
    std::string u = read_text("/proc/sys/kernel/random/uuid");
    while (!u.empty() && (u.back() == '\n' || u.back() == ' ')) u.pop_back();
    if (u.size() != 36) throw std::runtime_error("cannot read a random UUID");
    return u;
}

std::string random_key_hex() {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 64; ++i) s.push_back(kHex[rng() & 15]);
    return s;
}

void make_ext4_image(const std::string& image, const std::string& source_dir,
                     const std::string& uuid, unsigned size_mib) {
    {
        const int fd = open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, static_cast<off_t>(size_mib) * 1024 * 1024) != 0)
            throw std::runtime_error("cannot create " + image);
        close(fd);
    }
    // -E root_owner: mkfs.ext4 -d copies owners and modes; keep the root predictable anyway.
    must_run({"mkfs.ext4", "-q", "-F", "-U", uuid, "-L", "kc-test", "-E", "root_owner=0:0", "-d",
              source_dir, image});
}

LoopDevice::LoopDevice(const std::string& image) {
    std::string out = must_run({"losetup", "-P", "--show", "-f", image});
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    path_ = out;
    attached_ = true;
    struct stat st {};
    if (stat(path_.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
        throw std::runtime_error("losetup printed \"" + path_ + "\", not a block device");
    devnum_ = st.st_rdev;
}

LoopDevice::~LoopDevice() {
    try {
        detach();
        udev_settle();
    } catch (...) {
        // A destructor must not throw; a loop device left attached is visible in losetup -a.
    }
}

void LoopDevice::detach() {
    if (!attached_) return;
    attached_ = false;
    // A just-closed mount may hold the device for a moment: retry briefly.
    for (int i = 0; i < 50; ++i) {
        if (run_command({"losetup", "-d", path_}).status == 0) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("losetup -d " + path_ + " failed");
}

std::string LoopDevice::majmin() const {
    return std::to_string(major(devnum_)) + ":" + std::to_string(minor(devnum_));
}

StickContent make_hostile_stick(const std::string& root, const std::string& outside_file) {
    using nlohmann::json;
    StickContent c;
    const TestIdentity tls = make_identity(KeyKind::EcP256, 0, "stick-tls");
    json keys = json::array();
    keys.push_back({{"name", "stick-kek"}, {"encodedKey", random_key_hex()}});
    keys.push_back({{"name", "stick-pass"}, {"passPhrase", "plug me in " + random_key_hex()}});
    keys.push_back({{"name", "stick-tls"},
                    {"privateKey", tls.key_pem_pkcs8},
                    {"certificate", tls.cert_pem},
                    {"tethered", true}});
    write_file(root + "/keys.4DKeyChain", keys.dump(2));
    write_file(
        root + "/second.4DKeyChain",
        json({{"name", "stick-kek-tethered"}, {"encodedKey", random_key_hex()}, {"tethered", true}})
            .dump());
    json mixed = json::array();
    mixed.push_back({{"name", "mixed-good"}, {"encodedKey", random_key_hex()}});
    mixed.push_back({{"name", "mixed-bad"}, {"encodedKey", "0123"}});
    mixed.push_back({{"name", "mixed-good-2"}, {"passPhrase", "second " + random_key_hex()}});
    write_file(root + "/mixed.4DKeyChain", mixed.dump());
    c.expected_labels = {"stick-kek",          "stick-pass", "stick-tls",
                         "stick-kek-tethered", "mixed-good", "mixed-good-2"};
    c.tethered_labels = {"stick-tls", "stick-kek-tethered"};

    // Hostile: a link out of the device, a FIFO, a file over the limit; a subfolder never read.
    write_file(outside_file, json({{"name", "outside"}, {"encodedKey", random_key_hex()}}).dump());
    if (symlink(outside_file.c_str(), (root + "/evil.4DKeyChain").c_str()) != 0)
        throw std::runtime_error("symlink failed");
    if (mkfifo((root + "/fifo.4DKeyChain").c_str(), 0600) != 0)
        throw std::runtime_error("mkfifo failed");
    std::string big = json({{"name", "big"}, {"encodedKey", random_key_hex()}}).dump();
    big.append(5 * 1024 * 1024 - big.size(), ' ');
    write_file(root + "/big.4DKeyChain", big);
    mkdir((root + "/sub").c_str(), 0700);
    write_file(root + "/sub/inner.4DKeyChain",
               json({{"name", "sub-key"}, {"encodedKey", random_key_hex()}}).dump());
    c.refused_log_lines = {
        "evil.4DKeyChain is a symbolic link", "fifo.4DKeyChain is not a regular file",
        "big.4DKeyChain is 5242880 bytes, over the 1 MiB limit", "mixed.4DKeyChain entry 1: "};
    return c;
}

size_t fd_count(pid_t pid) {
    DIR* d = opendir(proc_path(pid, "fd").c_str());
    if (d == nullptr) throw std::runtime_error("cannot list " + proc_path(pid, "fd"));
    size_t n = 0;
    while (const dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n;
}

size_t mount_count(pid_t pid) {
    const std::string t = read_text(proc_path(pid, "mountinfo"));
    return static_cast<size_t>(std::count(t.begin(), t.end(), '\n'));
}

size_t mounts_of(pid_t pid, const std::string& majmin) {
    std::istringstream in(read_text(proc_path(pid, "mountinfo")));
    size_t n = 0;
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string id, parent, dev;
        f >> id >> parent >> dev;
        if (dev == majmin) ++n;
    }
    return n;
}

std::map<std::string, ListedKey> list_keys(const std::string& socket) {
    const Reply r = request(socket, req(Opcode::ListKeys));
    if (r.error_code() != 0) throw std::runtime_error("LIST_KEYS failed: " + r.error_message());
    std::map<std::string, ListedKey> keys;
    for (const auto& raw : r.msg.get_all(Tag::KeyInfo)) {
        ListedKey k;
        for (const wire::Field& f : wire::decode_fields(raw)) {
            const std::string text(reinterpret_cast<const char*>(f.value.data()), f.value.size());
            if (f.tag == static_cast<uint16_t>(Tag::Label)) k.label = text;
            if (f.tag == static_cast<uint16_t>(Tag::Source)) k.sources.push_back(text);
            if (f.tag == static_cast<uint16_t>(Tag::Tethered))
                k.tethered = !f.value.empty() && f.value[0] != 0;
        }
        keys[k.label] = k;
    }
    return keys;
}

bool wait_for_label(const std::string& socket, const std::string& label,
                    std::chrono::milliseconds timeout) {
    auto b = req(Opcode::Wait);
    b.str(Tag::Label, label).u32(Tag::TimeoutMs, static_cast<uint32_t>(timeout.count()));
    const Reply r = request(socket, std::move(b));
    return r.error_code() == 0;
}

bool wait_until_gone(const std::string& socket, const std::string& label,
                     std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        if (list_keys(socket).count(label) == 0) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

std::string devices_config_for(const std::vector<std::string>& uuids) {
    std::string s = "[devices]\nallow_non_usb = true\nread_timeout_ms = 5000\n";
    for (const auto& u : uuids) s += "[[devices.match]]\nfs_uuid = \"" + u + "\"\n";
    return s;
}

}  // namespace keychaind::test
