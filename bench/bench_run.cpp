// BenchRun::measure: repeats, median, and a progress line on stderr.
#include "bench_run.h"

#include <cstdio>
#include <exception>

namespace keychaind::bench {

bool BenchRun::wanted(const std::string& scenario, const std::string& system) const {
    if (options_.only.empty()) return true;
    for (const auto& o : options_.only)
        if (scenario.find(o) != std::string::npos || system.find(o) != std::string::npos) return true;
    return false;
}

void BenchRun::measure(Row row, const std::function<Summary()>& once) {
    if (!wanted(row.scenario, row.system)) return;
    std::vector<Summary> runs;
    for (int i = 0; i < options_.repeats; ++i) {
        try {
            runs.push_back(once());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "  %s / %s: run %d failed: %s\n", row.scenario.c_str(), row.system.c_str(), i + 1,
                         e.what());
        }
    }
    if (runs.empty()) {
        std::fprintf(stderr, "  %s / %s: no run succeeded; row left out\n", row.scenario.c_str(), row.system.c_str());
        return;
    }
    row.summary = median_of(runs);
    row.runs = static_cast<int>(runs.size());
    const Summary& s = row.summary;
    std::fprintf(stderr, "%-30s %-36s c=%-2d d=%-2d t=%-2d %10.0f/s p50 %7.0f p99 %8.0f max %8.0f µs cpu %3.0f%%/%3.0f%%%s\n",
                 row.scenario.c_str(), row.system.c_str(), row.connections, row.depth, row.threads, s.ops_per_s,
                 s.p50_us, s.p99_us, s.max_us, s.client_cpu_pct, s.server_cpu_pct,
                 s.errors != 0 ? (" ERRORS " + std::to_string(s.errors)).c_str() : "");
    rows_.push_back(std::move(row));
}

void BenchRun::add_memory(Row row) {
    std::fprintf(stderr, "%-30s %-36s %8.1f MiB\n", row.scenario.c_str(), row.system.c_str(),
                 static_cast<double>(row.rss_kib) / 1024.0);
    rows_.push_back(std::move(row));
}

}  // namespace keychaind::bench
