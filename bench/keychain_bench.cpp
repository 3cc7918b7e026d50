// keychain-bench: throughput and latency of keychaind next to in-process signing, ssh-agent,
// SoftHSM2 in process and p11-kit server, in one run; writes results.md and results.csv.
//
//   keychain-bench [--smoke] [--seconds S] [--repeats N] [--out DIR] [--soak-ops N] ...
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench_keys.h"
#include "bench_run.h"
#include "scenarios.h"
#include "services.h"
#include "soft_token.h"
#include "targets.h"
#include "temp_dir.h"

#ifndef KEYCHAIND_BINARY
#error "KEYCHAIND_BINARY must name the built daemon"
#endif
#ifndef KEYCHAIND_PKCS11_MODULE
#error "KEYCHAIND_PKCS11_MODULE must name the built PKCS#11 module"
#endif

using namespace keychaind::bench;

namespace {

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return "unknown CPU";
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

std::string report(const BenchRun& run, const std::vector<Row>& rows, double wall_s,
                   const std::string& load_before) {
    const auto& o = run.options();
    char when[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    std::ostringstream md;
    md << "# keychain-bench results\n\n"
       << "- when: " << when << "; took " << static_cast<int>(wall_s) << " s\n"
       << "- machine: " << sysconf(_SC_NPROCESSORS_ONLN) << " CPUs, " << cpu_model()
       << "; load average before " << load_before << ", after " << load_average() << "\n"
       << "- command: `" << o.command_line << "`\n"
       << "- each row: median of " << o.repeats << " runs of " << o.timing.seconds << " s after "
       << o.timing.warmup_s << " s of warm-up; client epoll threads: " << o.client_threads << "\n"
       << "- conns: sockets (or PKCS#11 sessions); depth: requests in flight per connection; "
          "threads: caller threads "
          "in process, or the load generator's epoll threads; CPU: 100% = one core, client = this "
          "process, "
          "server = the process under test (and its children), other = the rest of the machine "
          "meanwhile (a shared "
          "machine's noise)\n\n"
       << markdown_table(rows) << "\n"
       << markdown_memory_table(rows);
    return md.str();
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    o.keychaind_binary = KEYCHAIND_BINARY;
    o.pkcs11_module = KEYCHAIND_PKCS11_MODULE;
    o.softhsm_module = keychaind::test::kSoftHsmModule;
    o.out_dir = "bench/results";
    for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);

    CLI::App app{"keychain-bench: keychaind throughput and latency next to its references"};
    app.add_flag("--smoke", o.smoke, "a few seconds: every system once, tiny windows (CI)");
    app.add_option("--seconds", o.timing.seconds, "counted window per run")
        ->check(CLI::PositiveNumber);
    app.add_option("--warmup", o.timing.warmup_s, "uncounted warm-up per run")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--repeats", o.repeats, "runs per row (the median is kept)")
        ->check(CLI::Range(1, 100));
    app.add_option("--connections", o.connections, "connection counts")->delimiter(',');
    app.add_option("--depths", o.depths, "requests in flight per connection")
        ->delimiter(',')
        ->check(CLI::Range(1, 128));
    app.add_option("--threads", o.threads, "thread counts of the in-process references")
        ->delimiter(',');
    app.add_option("--client-threads", o.client_threads, "the load generator's epoll threads")
        ->check(CLI::Range(1, 64));
    app.add_option("--soak-ops", o.soak_ops,
                   "requests in the long mixed run (1000000 for the full check)");
    app.add_option("--token-sessions", o.token_sessions,
                   "the daemon's token session pool (sessions = N); 0: its default")
        ->check(CLI::Range(0, 64));
    app.add_option("--rss-keys", o.rss_keys, "AES keys for the memory check")
        ->check(CLI::Range(1, 100000));
    // Not split at commas: the scenario names hold them ("SIGN ECDSA P-256, file key").
    app.add_option("--only", o.only,
                   "measure only rows whose scenario or system holds one of these texts");
    // bench/run names a default; a later --out on its command line wins.
    app.add_option("--out", o.out_dir, "results directory (results.md, results.csv)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--keychaind", o.keychaind_binary, "the daemon binary");
    app.add_option("--pkcs11-module", o.pkcs11_module, "libkeychaind-pkcs11.so");
    CLI11_PARSE(app, argc, argv);
    if (o.smoke) {
        o.timing.seconds = std::min(o.timing.seconds, 0.05);
        o.timing.warmup_s = std::min(o.timing.warmup_s, 0.02);
        o.repeats = 1;
        o.connections = {1, 8};
        o.depths = {1, 8};
        o.threads = {1, 2};
        o.soak_ops = std::min<uint64_t>(o.soak_ops, 2000);
        o.rss_keys = std::min(o.rss_keys, 2000);
    }

    const auto started = std::chrono::steady_clock::now();
    const std::string load_before = load_average();
    BenchRun run(o);
    try {
        keychaind::test::TempDir dir("keychain-bench");
        std::fprintf(stderr, "keychain-bench: keys and services in %s\n", dir.path().c_str());
        const BenchKeys keys;
        keychaind::test::SoftToken::Options token_options;
        token_options.label = "bench";
        const keychaind::test::SoftToken token(
            token_options);  // sets SOFTHSM2_CONF for everyone below

        const std::string daemon_dir = dir.file("daemon");
        std::filesystem::create_directory(daemon_dir);
        keys.write_keychain_dir(daemon_dir + "/keys");
        KeychaindService daemon(o.keychaind_binary, daemon_dir,
                                {.key_dir = daemon_dir + "/keys",
                                 .token_label = token.label(),
                                 .token_pin = token.pin(),
                                 .softhsm_module = o.softhsm_module,
                                 .token_sessions = o.token_sessions});
        daemon.wait_for_keys(6, 30);  // 3 file keys, the token's EC, RSA and AES keys

        const SshAgentService agent(dir.path(), keys.write_pem_files(dir.path()));
        const P11KitServer p11_kit_server(dir.path(), o.softhsm_module, token.label());

        add_in_process(run, keys);
        add_keychaind(run, daemon, keys, token);
        add_ssh_agent(run, agent);
        add_softhsm(run, token);
        add_pkcs11_modules(run, p11_kit_server, daemon, token);
        run.execute();
        measure_memory(run, dir.path(), daemon, keys, token);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "keychain-bench: %s\n", e.what());
        return 1;
    }
    auto& rows = run.rows();
    apply_targets(rows);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const std::string md = report(run, rows, wall, load_before);
    std::filesystem::create_directories(o.out_dir);
    std::ofstream(o.out_dir + "/results.md") << md;
    std::ofstream(o.out_dir + "/results.csv") << csv(rows);
    std::fputs(md.c_str(), stdout);
    std::fprintf(stderr, "keychain-bench: %s/results.md and results.csv written in %.0f s\n",
                 o.out_dir.c_str(), wall);
    return 0;
}
