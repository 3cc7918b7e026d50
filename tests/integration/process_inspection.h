// What can be seen of a running process from outside: its mappings with their VmFlags (smaps),
// secrets found in its memory (/proc/PID/mem, as root), and what another uid may do to it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "known_secrets.h"

namespace keychaind::test {

struct Mapping {
    uint64_t start = 0;
    uint64_t end = 0;
    std::string perms;  // "rw-p"
    std::string path;   // "" for an anonymous mapping
    std::vector<std::string> vm_flags;  // smaps' VmFlags: "rd", "wr", "lo", "dd", "wf", ...
    bool has_flag(const std::string& flag) const;
    std::string describe() const;  // "7f..-7f.. rw-p (anonymous) [rd wr mr ...]"
};
// A "kB" field of /proc/PID/status ("VmLck", "VmRSS"), in KiB; throws when the process or the
// field is missing. Unsigned 64-bit as the kernel prints it: with ThreadSanitizer's terabytes of
// shadow mappings under mlockall this kernel (6.18) shows a wrapped VmLck (about 1.8e19 kB) in
// about half of its reads, which std::stol rejects.
uint64_t status_kib(pid_t pid, const std::string& field);

// /proc/PID/smaps, in address order.
std::vector<Mapping> mappings_of(pid_t pid);

struct MemoryHit {
    std::string form;  // the needle's
    Mapping mapping;
};
// Every needle found in the process's readable memory, with the mapping it was found in.
// Reservations over 1 GiB are skipped (they are not data: ASan's shadow). Throws when the
// memory cannot be read.
std::vector<MemoryHit> find_in_memory(pid_t pid, const std::vector<Needle>& needles);
std::string describe(const std::vector<MemoryHit>& hits);  // one line per hit

// What a process running as uid:gid (no supplementary groups, no capabilities) gets when it
// tries to reach `pid`: 0 for success, else the errno.
struct AccessAttempts {
    int ptrace_seize = -1;
    int ptrace_attach = -1;
    int open_mem = -1;
    int open_environ = -1;
};
AccessAttempts try_access_as(uid_t uid, gid_t gid, pid_t pid);

// A process that does nothing, run as uid:gid through exec (so it is dumpable, like any program
// a user starts); killed when destroyed.
class IdleProcess {
public:
    IdleProcess(uid_t uid, gid_t gid);
    ~IdleProcess();
    IdleProcess(const IdleProcess&) = delete;
    IdleProcess& operator=(const IdleProcess&) = delete;
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

}  // namespace keychaind::test
