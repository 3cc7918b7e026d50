// keychaind-soak: a long mixed load from many clients against a real keychaind while keys come and
// go, checking every reply and that the daemon's memory, fds and threads stay flat (docs/soak.md).
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "client_load.h"
#include "daemon_process.h"
#include "key_churn.h"
#include "process_sample.h"
#include "soak_keys.h"
#include "soak_tally.h"
#include "temp_dir.h"

using namespace keychaind;
using namespace keychaind::soak;

namespace {

struct Options {
    uint64_t ops = 1000000;
    uint64_t warmup_ops = 0;  // 0: a tenth of ops
    unsigned clients = 16;
    unsigned churn_ms = 10;
    long max_rss_growth_kib = 2048;
    long max_lck_growth_kib = 2048;
};

// Runs `ops` requests spread over the clients while the churn thread adds and drops keys; returns
// once every client is done and every churn key is back, so each phase ends in the same state.
double run_phase(std::vector<std::unique_ptr<ClientLoad>>& clients, KeyChurn& churn, uint64_t ops,
                 unsigned churn_ms, SoakTally& tally) {
    const auto begin = std::chrono::steady_clock::now();
    churn.start(std::chrono::milliseconds(churn_ms));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < clients.size(); ++i) {
        const uint64_t share = ops / clients.size() + (i < ops % clients.size() ? 1 : 0);
        threads.emplace_back([&, i, share] {
            try {
                clients[i]->run(share);
            } catch (const std::exception& e) {
                tally.admin_failure("client " + std::to_string(i) + " stopped: " + e.what());
            }
        });
    }
    for (auto& t : threads) t.join();
    churn.stop();
    churn.add_all();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - begin;
    // Let the daemon finish what the last replies started (audit, freed buffers) before sampling.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return took.count();
}

const char* kCodeNames[] = {"", "NO_SUCH_KEY", "KEY_NOT_PRESENT", "DENIED", "BAD_REQUEST", "UNSUPPORTED",
                            "TOKEN_ERROR", "LOCKED", "BUSY", "TIMEOUT", "INTERNAL"};

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"keychaind soak: mixed requests from many clients while keys are added and dropped"};
    app.add_option("--ops", o.ops, "client requests in all, warm-up included (default 1000000)")->check(CLI::Range(1000ul, 1000000000ul));
    app.add_option("--warmup-ops", o.warmup_ops, "requests before the first sample (default: a tenth of --ops)");
    app.add_option("--clients", o.clients, "client threads, one connection each (default 16)")->check(CLI::Range(1u, 200u));
    app.add_option("--churn-ms", o.churn_ms, "one key added or dropped every this many ms (default 10)")->check(CLI::Range(1u, 10000u));
    app.add_option("--max-rss-growth-kib", o.max_rss_growth_kib, "VmRSS growth allowed after warm-up (default 2048)");
    app.add_option("--max-lck-growth-kib", o.max_lck_growth_kib, "VmLck growth allowed after warm-up (default 2048)");
    CLI11_PARSE(app, argc, argv);
    if (o.warmup_ops == 0) o.warmup_ops = o.ops / 10;
    if (o.warmup_ops >= o.ops) {
        std::fprintf(stderr, "--warmup-ops (%lu) must be below --ops (%lu)\n", o.warmup_ops, o.ops);
        return 2;
    }

    try {
        test::TempDir dir("keychaind-soak");
        const std::string keys_dir = dir.file("keys");
        if (mkdir(keys_dir.c_str(), 0700) != 0) throw std::runtime_error("cannot create " + keys_dir);
        const SoakKeys keys = make_soak_keys(keys_dir, 4, 4);
        // Audit off: a journal write per decision would measure journald, not the daemon.
        test::DaemonProcess daemon(dir.path(), "[keys]\ndirectories = [\"" + keys_dir + "\"]\n\n[audit]\ntarget = \"off\"\n");
        SoakTally tally;
        KeyChurn churn(daemon.socket_path(), keys, tally);
        churn.add_all();
        std::vector<std::unique_ptr<ClientLoad>> clients;
        for (unsigned i = 0; i < o.clients; ++i)
            clients.push_back(std::make_unique<ClientLoad>(daemon.socket_path(), keys, i, tally));
        const ProcessSample at_start = sample_process(daemon.pid());

        const double warmup_s = run_phase(clients, churn, o.warmup_ops, o.churn_ms, tally);
        const ProcessSample after_warmup = sample_process(daemon.pid());
        const double main_s = run_phase(clients, churn, o.ops - o.warmup_ops, o.churn_ms, tally);
        const ProcessSample at_end = sample_process(daemon.pid());

        const uint64_t main_ops = o.ops - o.warmup_ops;
        std::printf("soak: %lu requests from %u clients in %.1f s (%.0f/s; after warm-up %lu in %.1f s, %.0f/s)\n",
                    tally.ops(), o.clients, warmup_s + main_s, static_cast<double>(tally.ops()) / (warmup_s + main_s),
                    main_ops, main_s, static_cast<double>(main_ops) / main_s);
        std::printf("soak: churn: %lu keys added, %lu dropped (one every %u ms)\n", churn.adds(), churn.drops(),
                    o.churn_ms);
        std::printf("soak: documented errors:");
        for (int code = 1; code <= 10; ++code)
            if (tally.expected_errors(code) != 0) std::printf(" %s %lu", kCodeNames[code], tally.expected_errors(code));
        std::printf("\nsoak: wrong replies: %lu\n", tally.wrong_count());
        for (const auto& w : tally.first_wrong()) std::printf("soak:   %s\n", w.c_str());
        std::printf("soak: daemon at start:        %s\n", describe(at_start).c_str());
        std::printf("soak: daemon after warm-up:   %s\n", describe(after_warmup).c_str());
        std::printf("soak: daemon at the end:      %s\n", describe(at_end).c_str());

        std::vector<std::string> failures;
        if (tally.ops() != o.ops) failures.push_back("answered " + std::to_string(tally.ops()) + " of " + std::to_string(o.ops) + " requests");
        if (tally.wrong_count() != 0) failures.push_back(std::to_string(tally.wrong_count()) + " wrong replies");
        // A soak whose clients never met a dropped key has not tested what it claims.
        if (churn.drops() == 0 || tally.expected_errors(KC_ERR_KEY_NOT_PRESENT) == 0)
            failures.push_back("no client met a dropped key (raise --ops or lower --churn-ms)");
        if (const long g = at_end.rss_kib - after_warmup.rss_kib; g > o.max_rss_growth_kib)
            failures.push_back("VmRSS grew " + std::to_string(g) + " KiB after warm-up (allowed " + std::to_string(o.max_rss_growth_kib) + ")");
        if (const long g = at_end.lck_kib - after_warmup.lck_kib; g > o.max_lck_growth_kib)
            failures.push_back("VmLck grew " + std::to_string(g) + " KiB after warm-up (allowed " + std::to_string(o.max_lck_growth_kib) + ")");
        if (at_end.fds != after_warmup.fds)
            failures.push_back("open fds went from " + std::to_string(after_warmup.fds) + " to " + std::to_string(at_end.fds));
        if (at_end.threads != after_warmup.threads)
            failures.push_back("threads went from " + std::to_string(after_warmup.threads) + " to " + std::to_string(at_end.threads));
        for (const auto& f : failures) std::printf("soak: FAILED: %s\n", f.c_str());
        if (failures.empty()) std::printf("soak: passed\n");
        return failures.empty() ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "soak: %s\n", e.what());
        return 1;
    }
}
