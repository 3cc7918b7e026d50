// ModuleState: everything C_Initialize sets up, behind one lock. PKCS#11's C API has no context
// argument, so this state is process-wide by the standard's design.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>

#include "cryptoki.h"
#include "daemon_link.h"
#include "module_config.h"
#include "object_table.h"
#include "sessions.h"

namespace keychaind::pkcs11 {

enum class LoginState { None, User, SecurityOfficer };

struct ModuleState {
    bool initialized = false;
    pid_t initialized_in = 0;
    ModuleConfig config;
    std::shared_ptr<DaemonLink> link;  // shared: a request in flight keeps it alive over C_Finalize
    ObjectTable objects;
    SessionTable sessions;
    LoginState login = LoginState::None;  // C_Login is accepted and changes nothing else
};

// Holds the module lock. The lock is never held while a request is with the daemon; it is taken
// around fork() (pthread_atfork) so a child never inherits it locked.
class StateGuard {
  public:
    StateGuard();
    ModuleState& operator*() const { return *state_; }
    ModuleState* operator->() const { return state_; }
    void unlock() { lock_.unlock(); }
    void relock() { lock_.lock(); }

  private:
    std::unique_lock<std::mutex> lock_;
    ModuleState* state_;
};

// The lock, after checking C_Initialize was called (else CKR_CRYPTOKI_NOT_INITIALIZED).
StateGuard lock_initialized();

// C_Initialize / C_Finalize. A child of fork() may call C_Initialize again: it starts afresh
// (its parent's sessions are not its own) rather than answer CKR_CRYPTOKI_ALREADY_INITIALIZED.
void initialize_module(void* init_args);
void finalize_module(void* reserved);

}  // namespace keychaind::pkcs11
