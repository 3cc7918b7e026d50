// Latency samples from one measurement and their summary (throughput, p50, p99, max).
#pragma once

#include <cstdint>
#include <vector>

namespace keychaind::bench {

// Nanoseconds from send to reply, one per completed request inside the measurement window
// (64 bits: 4096 RSA requests in flight wait longer than 4.3 s).
using LatencySamples = std::vector<uint64_t>;

struct Summary {
    uint64_t ops = 0;
    double seconds = 0;
    double ops_per_s = 0;
    double p50_us = 0;
    double p99_us = 0;
    double max_us = 0;
    uint64_t errors = 0;         // error replies or failed calls (a row with errors is suspect)
    double client_cpu_pct = -1;  // the load generator's own CPU, 100 = one core; -1 unknown
    double server_cpu_pct = -1;  // the process under test (daemon, agent, server); -1 unknown
    double other_cpu_pct = -1;   // the rest of the machine meanwhile: a shared machine's noise
};

// Sorts `samples` in place.
Summary summarize(LatencySamples& samples, double seconds);

inline uint64_t to_sample(int64_t ns) { return ns < 0 ? 0 : static_cast<uint64_t>(ns); }

}  // namespace keychaind::bench
