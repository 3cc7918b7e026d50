// allocation_driver: the client side of bench/allocations-per-request. Warms up, then makes COUNT
// UNWRAP requests and COUNT ECDSA SIGN requests, one at a time, and sends SIGUSR2 to the daemon
// (preloaded with malloc_count.so) before, between and after, so the daemon's log holds three
// malloc counts.
//
//   allocation_driver SOCKET DAEMON_PID KEK_LABEL EC_LABEL [COUNT=10000]
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <keychain/client.hpp>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s SOCKET DAEMON_PID KEK_LABEL EC_LABEL [COUNT]\n", argv[0]);
        return 2;
    }
    const pid_t daemon = static_cast<pid_t>(std::atoi(argv[2]));
    const int count = argc > 5 ? std::atoi(argv[5]) : 10000;
    keychain::Client c(argv[1]);
    const auto dk = c.generate_data_key(argv[3]);
    const std::vector<uint8_t> digest(32, 7);
    constexpr int kEcdsaSha256 = 7;
    // Caches, pools and connections settle first.
    for (int i = 0; i < 100; ++i) {
        c.unwrap(dk.wrapped);
        c.sign(argv[4], kEcdsaSha256, digest);
    }
    const auto mark = [daemon] {
        usleep(200000);  // the last reply's work is done and logged
        kill(daemon, SIGUSR2);
        usleep(200000);
    };
    mark();
    for (int i = 0; i < count; ++i) c.unwrap(dk.wrapped);
    mark();
    for (int i = 0; i < count; ++i) c.sign(argv[4], kEcdsaSha256, digest);
    mark();
    std::printf("%d\n", count);
    return 0;
}
