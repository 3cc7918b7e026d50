// fork/exec with captured output, and background children.
#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace keychaind::test {

namespace {

using Clock = std::chrono::steady_clock;

int exit_code_of(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    return a;
}

// This process's environment with `extra` (NAME=value) added or replacing.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('=') + 1);
        bool replaced = false;
        for (const auto& x : extra) replaced = replaced || x.rfind(name, 0) == 0;
        if (!replaced) env.push_back(entry);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

std::string command_line(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& opts) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
        pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2 failed");
    auto args = c_argv(argv);
    const auto env_strings = environment_with(opts.env);
    auto envp = c_argv(env_strings);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        if (opts.stdin_data) {
            dup2(in_pipe[0], STDIN_FILENO);
        } else {
            const int null = open("/dev/null", O_RDONLY);
            dup2(null, STDIN_FILENO);
        }
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
        execvpe(args[0], args.data(), envp.data());
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (opts.stdin_data) {
        // Small inputs only: they fit in the pipe buffer, so this never blocks.
        const std::string& s = *opts.stdin_data;
        if (s.size() > 60000 ||
            write(in_pipe[1], s.data(), s.size()) != static_cast<ssize_t>(s.size()))
            throw std::runtime_error("cannot feed the child's standard input");
    }
    close(in_pipe[1]);

    ProcessResult r;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open_fds = 2;
    const auto deadline = Clock::now() + opts.timeout;
    bool killed = false;
    while (open_fds > 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        if (poll(fds, 2, static_cast<int>(left)) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            char buf[4096];
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = exit_code_of(status);
    r.describe = "$ " + command_line(argv) + "\nexit " + std::to_string(r.exit_code) +
                 (killed ? " (killed: timeout)" : "") + "\n--- stdout:\n" + r.out +
                 "--- stderr:\n" + r.err;
    return r;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, std::string log_path)
    : log_path_(std::move(log_path)) {
    auto args = c_argv(argv);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        const int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, STDIN_FILENO);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execvp(args[0], args.data());
        _exit(127);
    }
}

BackgroundProcess::~BackgroundProcess() {
    if (pid_ > 0) stop(SIGTERM);
}

std::string BackgroundProcess::log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool BackgroundProcess::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = exit_code_of(status);
        pid_ = -1;
        return false;
    }
    return true;
}

bool BackgroundProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (log().find(needle) != std::string::npos) return true;
        if (!running() || Clock::now() >= deadline) return log().find(needle) != std::string::npos;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

int BackgroundProcess::stop(int sig) {
    if (!running()) return exit_code_;
    kill(pid_, sig);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    int status = 0;
    for (;;) {
        const pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_) break;
        if (Clock::now() >= deadline) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    exit_code_ = exit_code_of(status);
    return exit_code_;
}

}  // namespace keychaind::test
