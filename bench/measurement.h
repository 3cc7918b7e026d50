// When a measurement runs: a warm-up that is not counted, then the counted window.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>

namespace keychaind::bench {

struct Timing {
    double warmup_s = 0.3;
    double seconds = 1.0;
    // When non-zero the run ends after this many requests instead (warm-up and window are then
    // ignored: every request counts). For the long mixed run.
    uint64_t total_ops = 0;
};

// Samples the load generator's own CPU (this process) and the server's over the counted window.
class CpuWindow {
  public:
    explicit CpuWindow(pid_t server_pid) : server_pid_(server_pid) {}
    void start();
    void stop();
    double client_pct() const;
    double server_pct() const;
    // Everything else the machine ran meanwhile (other users of a shared machine, the kernel).
    double other_pct() const;

  private:
    pid_t server_pid_;
    std::chrono::steady_clock::time_point t0_, t1_;
    double client0_ = 0, client1_ = 0, server0_ = -1, server1_ = -1, machine0_ = 0, machine1_ = 0;
};

}  // namespace keychaind::bench
