// Targets: ratios against reference rows measured in the same run on the same machine.
#include "targets.h"

#include <cstdio>
#include <string>

#include "scenario_names.h"

namespace keychaind::bench {
namespace {

using namespace names;

const Row* find(const std::vector<Row>& rows, const char* scenario, const char* system,
                int connections, int depth, int threads) {
    for (const auto& r : rows)
        if (r.scenario == scenario && r.system == system && r.rss_kib < 0 &&
            r.connections == connections && r.depth == depth &&
            (threads < 0 || r.threads == threads))
            return &r;
    return nullptr;
}

const Row* find_memory(const std::vector<Row>& rows, const char* scenario) {
    for (const auto& r : rows)
        if (r.scenario == scenario && r.rss_kib >= 0) return &r;
    return nullptr;
}

std::string rate(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f/s", v);
    return buf;
}

std::string ratio(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

void judge(Row& r, const std::string& text, bool ok) {
    r.target = r.target.empty() ? text : r.target + "; " + text;
    r.met = (r.met == "missed" || !ok) ? "missed" : "met";
}

// keychaind rows at `connections` (any depth) against a fraction of an in-process row.
void versus_in_process(std::vector<Row>& rows, const char* scenario, const char* reference_system,
                       int connections, int reference_threads, double fraction, const char* label) {
    const Row* ref = find(rows, scenario, reference_system, 0, 0, reference_threads);
    if (ref == nullptr) return;
    const double ref_rate = ref->summary.ops_per_s;
    for (auto& r : rows) {
        if (r.scenario != scenario || r.system != kKeychaind || r.connections != connections ||
            r.rss_kib >= 0)
            continue;
        judge(r,
              ">= " + std::to_string(static_cast<int>(fraction * 100)) + "% of " + label + " (" +
                  rate(ref_rate) + "): " + ratio(r.summary.ops_per_s / ref_rate) + "x",
              r.summary.ops_per_s >= fraction * ref_rate);
    }
}

}  // namespace

void apply_targets(std::vector<Row>& rows) {
    // Signing with a file key: the ceiling is the same backend in this process on 2 threads.
    versus_in_process(rows, kSignEcFile, kInProcess, 8, 2, 0.60, "in-process, 2 threads");
    versus_in_process(rows, kSignRsaFile, kInProcess, 8, 2, 0.85, "in-process, 2 threads");
    for (auto& r : rows) {
        if (r.scenario != kSignEcFile || r.system != kKeychaind || r.connections != 8) continue;
        if (const Row* agent = find(rows, kSignEcFile, kSshAgent, 8, r.depth, -1))
            judge(r,
                  ">= 5x ssh-agent at the same shape (" + rate(agent->summary.ops_per_s) +
                      "): " + ratio(r.summary.ops_per_s / agent->summary.ops_per_s) + "x",
                  r.summary.ops_per_s >= 5 * agent->summary.ops_per_s);
    }
    // Token keys: SoftHSM2 in this process with as many threads as keychaind has connections.
    for (const char* scenario : {kSignEcToken, kSignRsaToken})
        for (const int n : {1, 8})
            versus_in_process(rows, scenario, kSoftHsm, n, n, 0.85, "SoftHSM2 in-process");
    for (auto& r : rows) {
        if (r.scenario != kUnwrap || r.system != kKeychaind || r.connections != 1) continue;
        if (r.depth == 64) judge(r, ">= 200,000/s", r.summary.ops_per_s >= 200000);
        if (r.depth == 1)
            judge(r, ">= 30,000/s and p99 < 200 µs",
                  r.summary.ops_per_s >= 30000 && r.summary.p99_us < 200);
    }
    for (auto& r : rows) {
        if (r.scenario != kPkcs11Sign || r.system != kOurModule) continue;
        if (const Row* ref =
                find(rows, kPkcs11Sign, kP11KitServer, r.connections, r.depth, r.threads))
            judge(r,
                  ">= 1.5x p11-kit server (" + rate(ref->summary.ops_per_s) +
                      "): " + ratio(r.summary.ops_per_s / ref->summary.ops_per_s) + "x",
                  r.summary.ops_per_s >= 1.5 * ref->summary.ops_per_s);
    }
    for (auto& r : rows) {
        if (r.rss_kib < 0) continue;
        if (r.scenario == kRssIdle) judge(r, "<= 8 MiB", r.rss_kib <= 8 * 1024);
        if (r.scenario.rfind(kRssManyKeys, 0) == 0) judge(r, "<= 32 MiB", r.rss_kib <= 32 * 1024);
        if (r.scenario == kRssAfter)
            if (const Row* before = find_memory(rows, kRssBefore))
                judge(r, "flat: <= 1 MiB over before (" + std::to_string(before->rss_kib) + " KiB)",
                      r.rss_kib - before->rss_kib <= 1024);
    }
}

}  // namespace keychaind::bench
