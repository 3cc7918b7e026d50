// BenchRun::measure: repeats, median, and a progress line on stderr.
#include "bench_run.h"

#include <cstdio>
#include <exception>

namespace keychaind::bench {

bool BenchRun::wanted(const std::string& scenario, const std::string& system) const {
    if (options_.only.empty()) return true;
    for (const auto& o : options_.only)
        if (scenario.find(o) != std::string::npos || system.find(o) != std::string::npos)
            return true;
    return false;
}

void BenchRun::add(Row row, std::function<Summary()> once) {
    if (wanted(row.scenario, row.system)) jobs_.push_back({std::move(row), std::move(once), {}});
}

void BenchRun::execute() {
    for (int round = 1; round <= options_.repeats; ++round) {
        std::fprintf(stderr, "round %d of %d: %zu measurements\n", round, options_.repeats,
                     jobs_.size());
        for (auto& job : jobs_) {
            try {
                job.runs.push_back(job.once());
                const Summary& s = job.runs.back();
                std::fprintf(
                    stderr,
                    "  %-28s %-36s c=%-2d d=%-2d t=%-2d %9.0f/s p50 %8.0f p99 %8.0f max %8.0f us "
                    "cpu %3.0f/%3.0f/%3.0f%%%s\n",
                    job.row.scenario.c_str(), job.row.system.c_str(), job.row.connections,
                    job.row.depth, job.row.threads, s.ops_per_s, s.p50_us, s.p99_us, s.max_us,
                    s.client_cpu_pct, s.server_cpu_pct, s.other_cpu_pct,
                    s.errors != 0 ? (" ERRORS " + std::to_string(s.errors)).c_str() : "");
            } catch (const std::exception& e) {
                std::fprintf(stderr, "  %s / %s: run %d failed: %s\n", job.row.scenario.c_str(),
                             job.row.system.c_str(), round, e.what());
            }
        }
    }
    for (auto& job : jobs_) {
        if (job.runs.empty()) {
            std::fprintf(stderr, "%s / %s: no run succeeded; row left out\n",
                         job.row.scenario.c_str(), job.row.system.c_str());
            continue;
        }
        job.row.summary = median_of(job.runs);
        job.row.runs = static_cast<int>(job.runs.size());
        rows_.push_back(std::move(job.row));
    }
    jobs_.clear();
}

void BenchRun::add_memory(Row row) {
    std::fprintf(stderr, "%-30s %-36s %8.1f MiB\n", row.scenario.c_str(), row.system.c_str(),
                 static_cast<double>(row.rss_kib) / 1024.0);
    rows_.push_back(std::move(row));
}

}  // namespace keychaind::bench
