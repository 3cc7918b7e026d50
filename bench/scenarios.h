// Each system under test, measured over the run's matrix of connections, depths and threads.
#pragma once

#include <string>

#include "bench_keys.h"
#include "bench_run.h"
#include "services.h"

namespace keychaind::test {
class SoftToken;
}

namespace keychaind::bench {

// The daemon's backend in this process: the ceiling for file-key signing.
void measure_in_process(BenchRun& run, const BenchKeys& keys);
// keychaind over its socket: SIGN (file and token keys), UNWRAP, GENERATE_DATA_KEY.
void measure_keychaind(BenchRun& run, const KeychaindService& daemon, const BenchKeys& keys,
                       const test::SoftToken& token);
// ssh-agent with the same file keys, through the same load generator.
void measure_ssh_agent(BenchRun& run, const std::string& dir, const BenchKeys& keys);
// SoftHSM2 loaded into this process, on the token keychaind serves.
void measure_softhsm(BenchRun& run, const test::SoftToken& token);
// C_Sign through p11-kit server and through our module (via keychaind), same token key.
void measure_pkcs11_modules(BenchRun& run, const std::string& dir, const KeychaindService& daemon,
                            const test::SoftToken& token);
// Mixed long run with RSS before and after; idle RSS; RSS with many keys.
void measure_memory(BenchRun& run, const std::string& dir, KeychaindService& daemon, const BenchKeys& keys,
                    const test::SoftToken& token);

}  // namespace keychaind::bench
