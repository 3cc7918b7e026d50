// Process hardening at start.
#include "process_hardening.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

namespace keychaind {
namespace {

// Whether CAP_IPC_LOCK is in the effective set: with it, RLIMIT_MEMLOCK does not apply. Being
// root is not enough (a unit's CapabilityBoundingSet, setpriv, a container may drop it).
bool has_ipc_lock_capability() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (syscall(SYS_capget, &header, data) != 0) return false;
    return (data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK)) != 0;
}

std::string memlock_limit_text(const rlimit& lim) {
    return lim.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(lim.rlim_cur) + " bytes";
}

}  // namespace

void forbid_core_dumps_and_ptrace() {
    const rlimit zero{0, 0};
    if (setrlimit(RLIMIT_CORE, &zero) != 0)
        throw std::runtime_error(std::string("setrlimit(RLIMIT_CORE): ") + std::strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        throw std::runtime_error(std::string("prctl(PR_SET_DUMPABLE): ") + std::strerror(errno));
}

std::string lock_all_memory() {
    // Without CAP_IPC_LOCK a finite RLIMIT_MEMLOCK would let MCL_CURRENT pass and make later
    // thread stacks, heap growth and OpenSSL's secure heap fail at random under MCL_FUTURE;
    // better to refuse up front.
    rlimit lim{};
    getrlimit(RLIMIT_MEMLOCK, &lim);
    const bool capable = has_ipc_lock_capability();
    if (!capable && lim.rlim_cur != RLIM_INFINITY)
        return "RLIMIT_MEMLOCK is " + memlock_limit_text(lim) +
               " and the daemon lacks CAP_IPC_LOCK; run it with CAP_IPC_LOCK (root's default) or "
               "LimitMEMLOCK=infinity";
    // MCL_ONFAULT: lock pages as they are touched, so idle thread stacks cost no memory.
    // The raw syscall: ASan and UBSan intercept mlockall() as a silent no-op, and the sanitizer
    // build must lock (and be tested to lock) like the release build.
    auto lock = [](int flags) { return syscall(SYS_mlockall, flags) == 0; };
    if (!lock(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) && !lock(MCL_CURRENT | MCL_FUTURE))
        return std::string("mlockall: ") + std::strerror(errno) + " (RLIMIT_MEMLOCK " + memlock_limit_text(lim) +
               (capable ? ", with CAP_IPC_LOCK)" : ", without CAP_IPC_LOCK)");
    return {};
}

void daemonize() {
    auto fork_or_die = [] {
        const pid_t pid = fork();
        if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
        if (pid > 0) _exit(0);
    };
    fork_or_die();
    if (setsid() < 0) throw std::runtime_error(std::string("setsid: ") + std::strerror(errno));
    fork_or_die();
    if (chdir("/") != 0) throw std::runtime_error(std::string("chdir: ") + std::strerror(errno));
    const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (null > STDOUT_FILENO) close(null);
    }
}

}  // namespace keychaind
