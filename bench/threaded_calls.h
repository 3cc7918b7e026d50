// Closed-loop calls on N threads in this process (in-process crypto, PKCS#11 modules), measured
// over the same warm-up and window as the socket load.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>

#include "latency.h"
#include "measurement.h"

namespace keychaind::bench {

// One thread's caller: call() does one operation and returns false when it failed. Made on the
// main thread (so set-up errors surface there), then used by its thread alone.
class Caller {
  public:
    virtual ~Caller() = default;
    virtual bool call() = 0;
};

using CallerFactory = std::function<std::unique_ptr<Caller>(int thread_index)>;

// Throws what a caller throws.
Summary run_threads(int threads, const CallerFactory& make_caller, const Timing& timing,
                    pid_t server_pid = -1);

}  // namespace keychaind::bench
