// ChildProcess: a service the bench starts (keychaind, ssh-agent, p11-kit server), stopped when
// it goes out of scope; and what /proc says about a process (RSS, CPU time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace keychaind::bench {

class ChildProcess {
  public:
    // Runs argv (PATH lookup) with stdout and stderr appended to `log_path`. The child gets
    // SIGTERM if the bench dies first (PR_SET_PDEATHSIG), so a crash leaves nothing running.
    ChildProcess(const std::vector<std::string>& argv, std::string log_path);
    ~ChildProcess();  // stop()
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    const std::string& name() const { return name_; }
    // True while it has not exited (reaps it if it has).
    bool running();
    // SIGTERM, then SIGKILL after 10 s; idempotent.
    void stop();
    std::string log() const;
    // Waits until `socket_path` accepts a connection; throws with the log if the process exits
    // or the time runs out.
    void wait_for_socket(const std::string& socket_path, std::chrono::milliseconds timeout);

  private:
    std::string name_;
    std::string log_path_;
    pid_t pid_ = -1;
};

// Resident set size in KiB (VmRSS), -1 when the process is gone.
long rss_kib(pid_t pid);
// User + system CPU seconds the process and its live descendants have used (p11-kit server
// serves each client in a child it forks); -1 when the process is gone.
double cpu_seconds(pid_t pid);
// CPU seconds the whole machine has been busy (all cores, /proc/stat).
double machine_busy_seconds();
// Connects to a Unix socket; returns the fd or -1 (errno set).
int connect_unix(const std::string& path, bool nonblocking);

}  // namespace keychaind::bench
