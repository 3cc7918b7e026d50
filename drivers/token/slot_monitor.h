// SlotMonitor: one thread per module that notices tokens coming and going — blocking in
// C_WaitForSlotEvent where the module can, else polling its slots.
#pragma once

#include <p11-kit/pkcs11.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "token/pkcs11_module.h"

namespace keychaind::token {

// What a token tells the monitor about itself.
struct WatchState {
    bool open = false;       // it has sessions on the module
    bool searching = false;  // it is not on any slot the module lists
    bool stale = false;      // it wants the module initialized afresh before it is opened again
};

class SlotWatcher {
public:
    virtual ~SlotWatcher() = default;
    virtual WatchState watch_state() const = 0;
    // On the monitor thread: the slots as the module lists them now.
    virtual void on_slots(const std::vector<SlotToken>& slots) = 0;
};

class SlotMonitor {
public:
    SlotMonitor(std::weak_ptr<Module> module, CK_FUNCTION_LIST* fn, ModuleSettings settings, std::string spec);
    // Starts the thread with the first watcher. Watchers are held weakly.
    void add(std::weak_ptr<SlotWatcher> w);
    // Polls now instead of at the next interval.
    void wake();
    void set_settings(const ModuleSettings& settings);
    // The thread ends at its next chance (a blocking wait ends with the module's C_Finalize).
    void stop();
    // Whether the thread has left the module (or never started) by `deadline`.
    bool wait_exited(Clock::time_point deadline);

private:
    struct State {
        std::mutex mu;
        std::condition_variable cv;
        std::weak_ptr<Module> module;
        CK_FUNCTION_LIST* fn = nullptr;
        ModuleSettings settings;
        std::string spec;
        std::vector<std::weak_ptr<SlotWatcher>> watchers;
        bool started = false;
        bool stopping = false;
        bool woken = false;
        bool exited = false;
        std::string last_problem;
    };
    static void run(const std::shared_ptr<State>& st);
    static void tick(const std::shared_ptr<State>& st, bool may_reinitialize);
    std::shared_ptr<State> state_;
};

}  // namespace keychaind::token
