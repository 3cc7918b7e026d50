// Percentiles by sorting: a measurement holds at most a few million samples.
#include "latency.h"

#include <algorithm>
#include <cmath>

namespace keychaind::bench {

Summary summarize(LatencySamples& samples, double seconds) {
    Summary s;
    s.ops = samples.size();
    s.seconds = seconds;
    s.ops_per_s = seconds > 0 ? static_cast<double>(s.ops) / seconds : 0;
    if (samples.empty()) return s;
    std::sort(samples.begin(), samples.end());
    // Nearest-rank percentile.
    const auto rank = [&](double p) {
        const auto n = static_cast<double>(samples.size());
        const auto i = static_cast<size_t>(std::ceil(p * n));
        return samples[std::min(samples.size() - 1, i == 0 ? 0 : i - 1)];
    };
    s.p50_us = static_cast<double>(rank(0.50)) / 1000.0;
    s.p99_us = static_cast<double>(rank(0.99)) / 1000.0;
    s.max_us = static_cast<double>(samples.back()) / 1000.0;
    return s;
}

}  // namespace keychaind::bench
