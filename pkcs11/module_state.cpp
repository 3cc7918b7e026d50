// ModuleState: the lock, C_Initialize/C_Finalize, and the fork handlers.
#include "module_state.h"

#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "module_log.h"

namespace keychaind::pkcs11 {
namespace {

// Not static objects: a thread still inside the module while the process exits must not find
// them destroyed under it. C_Finalize releases what they hold; release_module_state() frees them
// when the module is unloaded.
std::mutex& g_mutex = *new std::mutex;
ModuleState& g_state = *new ModuleState;
// The link whose pool lock the fork handlers hold (g_state.link cannot change meanwhile).
DaemonLink* g_link_locked_for_fork = nullptr;

void before_fork() noexcept {
    g_mutex.lock();
    g_link_locked_for_fork = g_state.link.get();
    if (g_link_locked_for_fork != nullptr) g_link_locked_for_fork->lock_for_fork();
}

void after_fork() noexcept {
    if (g_link_locked_for_fork != nullptr) g_link_locked_for_fork->unlock_after_fork();
    g_link_locked_for_fork = nullptr;
    g_mutex.unlock();
}

void register_fork_handlers() {
    // glibc drops these handlers when the module is dlclose()d.
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(before_fork, after_fork, after_fork); });
}

// At dlclose() (and at exit): the state is freed only when no C_Initialize is in force, since
// only then is no thread of a well-behaved application inside the module. A process that exits
// without C_Finalize keeps it.
__attribute__((destructor)) void release_module_state() {
    {
        std::unique_lock lock(g_mutex, std::try_to_lock);
        if (!lock.owns_lock() || g_state.initialized) return;
    }
    delete &g_state;
    delete &g_mutex;
}

}  // namespace

StateGuard::StateGuard() : lock_(g_mutex), state_(&g_state) {}

StateGuard lock_initialized() {
    StateGuard g;
    if (!g->initialized)
        throw Pkcs11Error(CKR_CRYPTOKI_NOT_INITIALIZED, "C_Initialize was not called");
    return g;
}

void initialize_module(void* init_args) {
    if (init_args != nullptr) {
        CK_C_INITIALIZE_ARGS a;
        std::memcpy(&a, init_args, sizeof a);
        const int given = (a.CreateMutex != nullptr) + (a.DestroyMutex != nullptr) +
                          (a.LockMutex != nullptr) + (a.UnlockMutex != nullptr);
        if (given != 0 && given != 4)
            throw Pkcs11Error(CKR_ARGUMENTS_BAD,
                              "C_Initialize: some but not all mutex functions given");
        // The module always locks with the OS's mutexes and never starts a thread, so it serves
        // every threading model a caller may ask for. pReserved is ignored (NSS puts its module
        // parameters there).
    }
    register_fork_handlers();
    // A child of fork() whose parent had initialized the module keeps the parent's settings: the
    // child may have dropped privileges since (nginx's workers run as another user) and no
    // longer be allowed to read the config file, and it must reach the same daemon anyway.
    std::optional<ModuleConfig> inherited;
    {
        StateGuard g;
        if (g->initialized && g->initialized_in == getpid())
            throw Pkcs11Error(CKR_CRYPTOKI_ALREADY_INITIALIZED, "C_Initialize was already called");
        if (g->initialized) inherited = g->config;
    }
    ModuleConfig config;
    try {
        config = inherited ? *inherited : load_module_config();
    } catch (const Pkcs11Error& e) {
        log_problem(e.what());
        throw;
    }
    std::shared_ptr<DaemonLink> old_link;
    {
        StateGuard g;
        if (g->initialized && g->initialized_in == getpid())
            throw Pkcs11Error(CKR_CRYPTOKI_ALREADY_INITIALIZED, "C_Initialize was already called");
        if (g->initialized)
            log_debug("C_Initialize in a forked child: starting afresh with the parent's settings");
        old_link = std::move(g->link);
        g->config = config;
        g->link = std::make_shared<DaemonLink>(config.socket_path, config.timeout_ms);
        g->sessions.close_all();
        g->objects.clear();
        g->login = LoginState::None;
        g->initialized = true;
        g->initialized_in = getpid();
    }
    log_debug("initialized; daemon socket " + config.socket_path);
    // old_link (a parent's, after fork) is destroyed here, outside the lock.
}

void finalize_module(void* reserved) {
    if (reserved != nullptr)
        throw Pkcs11Error(CKR_ARGUMENTS_BAD, "C_Finalize: pReserved must be NULL");
    std::shared_ptr<DaemonLink> old_link;
    StateGuard g = lock_initialized();
    old_link = std::move(g->link);
    g->sessions.close_all();
    g->objects.clear();
    g->login = LoginState::None;
    g->initialized = false;
    g.unlock();
}

}  // namespace keychaind::pkcs11
