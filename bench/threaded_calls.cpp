// run_threads: every thread starts at one instant and stops issuing at the window's end.
#include "threaded_calls.h"

#include <chrono>
#include <exception>
#include <thread>
#include <vector>

namespace keychaind::bench {
namespace {
using Clock = std::chrono::steady_clock;

struct CallerThreadResult {
    LatencySamples samples;
    uint64_t errors = 0;
    std::exception_ptr failure;
};

}  // namespace

Summary run_threads(int threads, const CallerFactory& make_caller, const Timing& timing,
                    pid_t server_pid) {
    std::vector<std::unique_ptr<Caller>> callers;
    for (int t = 0; t < threads; ++t) callers.push_back(make_caller(t));

    const auto start = Clock::now() + std::chrono::milliseconds(20);
    const auto window_start = start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(timing.warmup_s));
    const auto window_end = window_start + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(timing.seconds));
    std::vector<CallerThreadResult> results(static_cast<size_t>(threads));
    CpuWindow cpu(server_pid);
    {
        std::vector<std::jthread> running;
        for (int t = 0; t < threads; ++t)
            running.emplace_back([&, t] {
                CallerThreadResult& r = results[static_cast<size_t>(t)];
                Caller& c = *callers[static_cast<size_t>(t)];
                try {
                    std::this_thread::sleep_until(start);
                    for (;;) {
                        const auto sent = Clock::now();
                        if (sent >= window_end) break;
                        const bool ok = c.call();
                        const auto done = Clock::now();
                        if (done >= window_start && done < window_end) {
                            r.samples.push_back(to_sample((done - sent).count()));
                            if (!ok) ++r.errors;
                        }
                    }
                } catch (...) {
                    r.failure = std::current_exception();
                }
            });
        std::this_thread::sleep_until(window_start);
        cpu.start();
        std::this_thread::sleep_until(window_end);
        cpu.stop();
    }
    LatencySamples all;
    uint64_t errors = 0;
    for (auto& r : results) {
        if (r.failure) std::rethrow_exception(r.failure);
        all.insert(all.end(), r.samples.begin(), r.samples.end());
        errors += r.errors;
    }
    Summary s = summarize(all, timing.seconds);
    s.errors = errors;
    s.client_cpu_pct = cpu.client_pct();
    s.server_cpu_pct = cpu.server_pct();
    s.other_cpu_pct = cpu.other_pct();
    return s;
}

}  // namespace keychaind::bench
