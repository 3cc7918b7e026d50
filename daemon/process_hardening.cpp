// Process hardening at start.
#include "process_hardening.h"

#include <fcntl.h>
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

void forbid_core_dumps_and_ptrace() {
    const rlimit zero{0, 0};
    if (setrlimit(RLIMIT_CORE, &zero) != 0)
        throw std::runtime_error(std::string("setrlimit(RLIMIT_CORE): ") + std::strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        throw std::runtime_error(std::string("prctl(PR_SET_DUMPABLE): ") + std::strerror(errno));
}

std::string lock_all_memory() {
    // With a finite RLIMIT_MEMLOCK and no CAP_IPC_LOCK, MCL_FUTURE would make later thread
    // stacks and heap growth fail at random; better to refuse up front.
    rlimit lim{};
    getrlimit(RLIMIT_MEMLOCK, &lim);
    if (geteuid() != 0 && lim.rlim_cur != RLIM_INFINITY)
        return "RLIMIT_MEMLOCK is " + std::to_string(lim.rlim_cur) +
               " bytes and the daemon is not root; run it as root, with CAP_IPC_LOCK and "
               "LimitMEMLOCK=infinity";
    // MCL_ONFAULT: lock pages as they are touched, so idle thread stacks cost no memory.
    // The raw syscall: ASan and UBSan intercept mlockall() as a silent no-op, and the sanitizer
    // build must lock (and be tested to lock) like the release build.
    auto lock = [](int flags) { return syscall(SYS_mlockall, flags) == 0; };
    if (!lock(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) && !lock(MCL_CURRENT | MCL_FUTURE))
        return std::string("mlockall: ") + std::strerror(errno);
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
