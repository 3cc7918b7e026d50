// Child processes for the TLS and certificate tests: a command run to completion with its output
// captured (curl, openssl, keychainctl), and a server left running in the background.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace keychaind::test {

struct ProcessResult {
    int exit_code = -1;  // 128 + signal when killed
    std::string out;
    std::string err;
    std::string all() const { return out + err; }
    // "exit N", the command line, stdout and stderr: for INFO().
    std::string describe;
};

struct ProcessOptions {
    std::optional<std::string> stdin_data;  // default: /dev/null
    std::chrono::seconds timeout{30};       // then SIGKILL, and exit_code 128 + 9
    std::vector<std::string> env;           // NAME=value, added to this process's environment
};

// argv[0] is looked up in PATH. Never throws for the child's own failure (exit 127 when argv[0]
// cannot be run).
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// A long-running child (the TLS server) with stdout and stderr in `log_path`.
class BackgroundProcess {
  public:
    BackgroundProcess(const std::vector<std::string>& argv, std::string log_path);
    ~BackgroundProcess();  // SIGTERM, then SIGKILL after 10 s
    BackgroundProcess(const BackgroundProcess&) = delete;
    BackgroundProcess& operator=(const BackgroundProcess&) = delete;

    std::string log() const;
    // Polls the log for `needle`; false when the timeout passes or the process exits first.
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout);
    // Sends `sig`, waits for the exit (up to 10 s, then SIGKILL) and returns the exit code
    // (128 + signal when killed by one).
    int stop(int sig);
    bool running();
    pid_t pid() const { return pid_; }  // -1 once it has exited and been reaped

  private:
    pid_t pid_ = -1;
    int exit_code_ = -1;
    std::string log_path_;
};

}  // namespace keychaind::test
