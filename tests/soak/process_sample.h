// ProcessSample: the resource figures of a running process that a leak would move.
#pragma once

#include <sys/types.h>

#include <string>

namespace keychaind::soak {

struct ProcessSample {
    long rss_kib = 0;  // VmRSS
    long lck_kib = 0;  // VmLck: the daemon runs under mlockall, so this is all it has mapped
    long hwm_kib = 0;  // VmHWM: the peak RSS so far
    long threads = 0;
    long fds = 0;      // entries of /proc/PID/fd
};

// Reads /proc/PID/status and /proc/PID/fd; throws naming the file when it cannot.
ProcessSample sample_process(pid_t pid);

std::string describe(const ProcessSample& s);

}  // namespace keychaind::soak
