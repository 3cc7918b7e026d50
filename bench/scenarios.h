// Each system under test, registered over the run's matrix of connections, depths and threads
// (BenchRun::execute runs them); and the memory checks, which run at once.
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
void add_in_process(BenchRun& run, const BenchKeys& keys);
// keychaind over its socket: SIGN (file and token keys), UNWRAP, GENERATE_DATA_KEY.
void add_keychaind(BenchRun& run, const KeychaindService& daemon, const BenchKeys& keys,
                   const test::SoftToken& token);
// ssh-agent holding the same file keys, through the same load generator.
void add_ssh_agent(BenchRun& run, const SshAgentService& agent);
// SoftHSM2 loaded into this process, on the token keychaind serves.
void add_softhsm(BenchRun& run, const test::SoftToken& token);
// C_Sign through p11-kit server and through our module (via keychaind), same token key.
void add_pkcs11_modules(BenchRun& run, const P11KitServer& server, const KeychaindService& daemon,
                        const test::SoftToken& token);
// A long mixed run with RSS before and after (then stops `daemon`); idle RSS; RSS with many keys.
void measure_memory(BenchRun& run, const std::string& dir, KeychaindService& daemon,
                    const BenchKeys& keys, const test::SoftToken& token);

}  // namespace keychaind::bench
