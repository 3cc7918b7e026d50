// Process inspection from outside: smaps, a memory scan through /proc/PID/mem, access as another uid.
#include "process_inspection.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace keychaind::test {
namespace {

std::string proc_file(pid_t pid, const char* name) { return "/proc/" + std::to_string(pid) + "/" + name; }

bool is_mapping_header(const std::string& line) {
    const auto dash = line.find('-');
    const auto space = line.find(' ');
    return dash != std::string::npos && space != std::string::npos && dash < space &&
           line.find_first_not_of("0123456789abcdef") == dash;
}

bool drop_to(uid_t uid, gid_t gid) {
    return setgroups(0, nullptr) == 0 && setresgid(gid, gid, gid) == 0 && setresuid(uid, uid, uid) == 0;
}

int errno_of(bool ok) { return ok ? 0 : errno; }

}  // namespace

bool Mapping::has_flag(const std::string& flag) const {
    for (const auto& f : vm_flags)
        if (f == flag) return true;
    return false;
}

std::string Mapping::describe() const {
    std::ostringstream s;
    s << std::hex << start << "-" << end << std::dec << " " << perms << " " << (path.empty() ? "(anonymous)" : path)
      << " (" << (end - start) / 1024 << " KiB) [";
    for (size_t i = 0; i < vm_flags.size(); ++i) s << (i ? " " : "") << vm_flags[i];
    s << "]";
    return s.str();
}

uint64_t status_kib(pid_t pid, const std::string& field) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(field + ":", 0) != 0) continue;
        const char* p = line.c_str() + field.size() + 1;
        const char* end = line.c_str() + line.size();
        while (p < end && (*p == ' ' || *p == '\t')) ++p;
        uint64_t kib = 0;
        const auto [rest, ec] = std::from_chars(p, end, kib);
        if (ec != std::errc{} || std::string_view(rest, end - rest) != " kB")
            throw std::runtime_error(path + ": cannot read \"" + line + "\"");
        return kib;
    }
    throw std::runtime_error(path + " has no " + field + " line");
}

std::vector<Mapping> mappings_of(pid_t pid) {
    std::ifstream smaps(proc_file(pid, "smaps"));
    if (!smaps) throw std::runtime_error("cannot read " + proc_file(pid, "smaps"));
    std::vector<Mapping> out;
    for (std::string line; std::getline(smaps, line);) {
        if (is_mapping_header(line)) {
            std::istringstream f(line);
            std::string range, offset, dev, inode;
            Mapping m;
            f >> range >> m.perms >> offset >> dev >> inode;
            std::getline(f >> std::ws, m.path);
            const auto dash = range.find('-');
            m.start = std::stoull(range.substr(0, dash), nullptr, 16);
            m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
            out.push_back(std::move(m));
        } else if (line.rfind("VmFlags:", 0) == 0 && !out.empty()) {
            std::istringstream f(line.substr(8));
            for (std::string flag; f >> flag;) out.back().vm_flags.push_back(flag);
        }
    }
    return out;
}

std::vector<MemoryHit> find_in_memory(pid_t pid, const std::vector<Needle>& needles) {
    const int mem = open(proc_file(pid, "mem").c_str(), O_RDONLY | O_CLOEXEC);
    if (mem < 0) throw std::runtime_error("cannot open " + proc_file(pid, "mem") + ": " + strerror(errno));
    std::vector<MemoryHit> found;
    size_t mappings_read = 0;
    for (const Mapping& m : mappings_of(pid)) {
        if (m.perms.empty() || m.perms[0] != 'r' || m.path == "[vvar]" || m.path == "[vsyscall]") continue;
        // The daemon's memory is a few MiB; a mapping past 1 GiB is a reservation, not data.
        if (m.end - m.start > (uint64_t{1} << 30)) continue;
        std::vector<uint8_t> data(m.end - m.start);
        const ssize_t got = pread(mem, data.data(), data.size(), static_cast<off_t>(m.start));
        if (got <= 0) continue;
        data.resize(static_cast<size_t>(got));
        ++mappings_read;
        for (const Needle& n : needles)
            if (memmem(data.data(), data.size(), n.bytes.data(), n.bytes.size()) != nullptr)
                found.push_back({n.form, m});
    }
    close(mem);
    // A scan that saw almost nothing proves nothing.
    if (mappings_read <= 10)
        throw std::runtime_error("only " + std::to_string(mappings_read) + " mappings of pid " + std::to_string(pid) +
                                 " could be read");
    return found;
}

std::string describe(const std::vector<MemoryHit>& hits) {
    std::string s;
    for (const auto& h : hits) s += "\n  " + h.form + " in " + h.mapping.describe();
    return s;
}

AccessAttempts try_access_as(uid_t uid, gid_t gid, pid_t pid) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const pid_t child = fork();
    if (child < 0) throw std::runtime_error("fork failed");
    if (child == 0) {
        AccessAttempts a;
        if (!drop_to(uid, gid)) _exit(126);
        // SEIZE first: should it succeed, it leaves the target running (ATTACH would stop it).
        a.ptrace_seize = errno_of(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0);
        a.ptrace_attach = errno_of(ptrace(PTRACE_ATTACH, pid, nullptr, nullptr) == 0);
        for (auto [name, result] : {std::pair{"mem", &a.open_mem}, std::pair{"environ", &a.open_environ}}) {
            const int fd = open(proc_file(pid, name).c_str(), O_RDONLY | O_CLOEXEC);
            *result = errno_of(fd >= 0);
            if (fd >= 0) close(fd);
        }
        const bool written = write(fds[1], &a, sizeof a) == static_cast<ssize_t>(sizeof a);
        _exit(written ? 0 : 125);  // exiting detaches from a target it may have seized
    }
    close(fds[1]);
    AccessAttempts a;
    const ssize_t got = read(fds[0], &a, sizeof a);
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (got != static_cast<ssize_t>(sizeof a))
        throw std::runtime_error("the probe as uid " + std::to_string(uid) + " failed (wait status " +
                                 std::to_string(status) + ")");
    return a;
}

IdleProcess::IdleProcess(uid_t uid, gid_t gid) {
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        if (!drop_to(uid, gid)) _exit(126);
        execl("/bin/sleep", "sleep", "60", nullptr);
        _exit(127);
    }
    // Until the exec, the child is a copy of this root process that changed uid: not dumpable.
    for (int i = 0; i < 500; ++i) {
        std::ifstream comm(proc_file(pid_, "comm"));
        std::string name;
        if (comm >> name && name == "sleep") return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    throw std::runtime_error("/bin/sleep as uid " + std::to_string(uid) + " did not start");
}

IdleProcess::~IdleProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
}

}  // namespace keychaind::test
