// CpuWindow: getrusage for this process, /proc for the server.
#include "measurement.h"

#include <sys/resource.h>

#include <algorithm>

#include "child_process.h"

namespace keychaind::bench {
namespace {

double self_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    const auto s = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace

void CpuWindow::start() {
    t0_ = std::chrono::steady_clock::now();
    client0_ = self_cpu_seconds();
    if (server_pid_ > 0) server0_ = cpu_seconds(server_pid_);
    machine0_ = machine_busy_seconds();
}

void CpuWindow::stop() {
    t1_ = std::chrono::steady_clock::now();
    client1_ = self_cpu_seconds();
    if (server_pid_ > 0) server1_ = cpu_seconds(server_pid_);
    machine1_ = machine_busy_seconds();
}

double CpuWindow::client_pct() const {
    const double wall = std::chrono::duration<double>(t1_ - t0_).count();
    return wall > 0 ? 100.0 * (client1_ - client0_) / wall : -1;
}

double CpuWindow::server_pct() const {
    const double wall = std::chrono::duration<double>(t1_ - t0_).count();
    if (server0_ < 0 || server1_ < 0 || wall <= 0) return -1;
    return 100.0 * (server1_ - server0_) / wall;
}

double CpuWindow::other_pct() const {
    const double wall = std::chrono::duration<double>(t1_ - t0_).count();
    if (wall <= 0) return -1;
    double other = (machine1_ - machine0_) - (client1_ - client0_);
    if (server0_ >= 0 && server1_ >= 0) other -= server1_ - server0_;
    return std::max(0.0, 100.0 * other / wall);
}

}  // namespace keychaind::bench
