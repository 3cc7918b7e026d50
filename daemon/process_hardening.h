// Process-wide protections for a daemon that holds secrets: no core, no ptrace, no swap.
#pragma once

#include <string>

namespace keychaind {

// PR_SET_DUMPABLE 0 (no ptrace by non-root, no core) and RLIMIT_CORE 0. Throws on failure.
void forbid_core_dumps_and_ptrace();

// Locks all current and future pages (so mbedTLS's own heap copies of keys are locked too).
// Returns an empty string on success, else why it could not; the caller decides whether an
// unlocked run is acceptable (only with the demo-only switch).
std::string lock_all_memory();

// Classic double-fork daemonization: detaches from the terminal; stdio goes to /dev/null.
void daemonize();

}  // namespace keychaind
