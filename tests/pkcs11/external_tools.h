// Running the real PKCS#11 clients (p11tool, pkcs11-tool, gnutls-serv, gnutls-cli) from tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace keychaind::test {

struct ToolResult {
    int exit_code = -1;  // -1: did not exit by itself within the timeout (then killed)
    std::string output;  // standard output and standard error, interleaved
    std::chrono::milliseconds elapsed{0};
};

// The tool's path from PATH; empty when it is not installed.
std::string find_tool(const std::string& name);
// Fails the test (naming the Debian package to install) when the tool is not installed.
void require_tool(const std::string& name, const char* package);

// Runs argv[0] (looked up in PATH) with standard input from /dev/null.
ToolResult run_tool(const std::vector<std::string>& argv,
                    std::chrono::seconds timeout = std::chrono::seconds(60));

// A tool left running in the background (a server); SIGTERM, then SIGKILL, at destruction.
class BackgroundTool {
  public:
    BackgroundTool(const std::vector<std::string>& argv, const std::string& log_path);
    ~BackgroundTool();
    BackgroundTool(const BackgroundTool&) = delete;
    BackgroundTool& operator=(const BackgroundTool&) = delete;
    bool running();
    std::string log() const;

  private:
    pid_t pid_ = -1;
    std::string log_path_;
};

// A TCP port on 127.0.0.1 nobody listens on right now.
int free_tcp_port();
// Polls until something accepts connections on 127.0.0.1:port.
bool wait_for_tcp_port(int port, std::chrono::milliseconds timeout);

}  // namespace keychaind::test
