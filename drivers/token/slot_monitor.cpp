// SlotMonitor: C_WaitForSlotEvent or a poll; tells each token about the slots.
#include "token/slot_monitor.h"

#include <pthread.h>

#include <thread>

#include "core/crypto_backend.h"
#include "core/log.h"

namespace keychaind::token {

SlotMonitor::SlotMonitor(std::weak_ptr<Module> module, CK_FUNCTION_LIST* fn, ModuleSettings settings,
                         std::string spec)
    : state_(std::make_shared<State>()) {
    state_->module = std::move(module);
    state_->fn = fn;
    state_->settings = settings;
    state_->spec = std::move(spec);
}

void SlotMonitor::add(std::weak_ptr<SlotWatcher> w) {
    bool start = false;
    {
        std::lock_guard lk(state_->mu);
        state_->watchers.push_back(std::move(w));
        if (!state_->started && !state_->stopping) start = state_->started = true;
    }
    if (start) {
        // Detached: the thread holds the state, and the module only weakly; the module's
        // finalizer waits for it to leave (wait_exited) before unloading.
        std::thread([st = state_] {
            pthread_setname_np(pthread_self(), "kc-slots");
            run(st);
        }).detach();
    }
}

void SlotMonitor::wake() {
    {
        std::lock_guard lk(state_->mu);
        state_->woken = true;
    }
    state_->cv.notify_all();
}

void SlotMonitor::set_settings(const ModuleSettings& settings) {
    {
        std::lock_guard lk(state_->mu);
        state_->settings = settings;
    }
    state_->cv.notify_all();
}

void SlotMonitor::stop() {
    {
        std::lock_guard lk(state_->mu);
        state_->stopping = true;
    }
    state_->cv.notify_all();
}

bool SlotMonitor::wait_exited(Clock::time_point deadline) {
    std::unique_lock lk(state_->mu);
    return state_->cv.wait_until(lk, deadline, [&] { return !state_->started || state_->exited; });
}

void SlotMonitor::run(const std::shared_ptr<State>& st) {
    bool blocking = true;
    for (;;) {
        {
            std::lock_guard lk(st->mu);
            if (st->stopping) break;
        }
        if (blocking) {
            // Not under the module's gate: only C_Finalize ends this wait.
            CK_SLOT_ID slot = 0;
            const CK_RV rv = st->fn->C_WaitForSlotEvent(0, &slot, nullptr);
            {
                std::lock_guard lk(st->mu);
                if (st->stopping) break;
            }
            if (rv == CKR_OK) {
                tick(st, false);
                continue;
            }
            blocking = false;
            std::string every;
            {
                std::lock_guard lk(st->mu);
                every = std::to_string(st->settings.poll.count()) + " ms";
            }
            if (rv == CKR_FUNCTION_NOT_SUPPORTED)
                log::debug("module " + st->spec + " cannot wait for slot events; polling its slots every " + every);
            else
                log::info("module " + st->spec + ": C_WaitForSlotEvent failed (" + ckr_name(rv) +
                          "); polling its slots every " + every);
        }
        {
            std::unique_lock lk(st->mu);
            st->cv.wait_for(lk, st->settings.poll, [&] { return st->stopping || st->woken; });
            if (st->stopping) break;
            st->woken = false;
        }
        tick(st, true);
    }
    release_thread_crypto_state();  // the module's calls leave OpenSSL state on this thread
    {
        std::lock_guard lk(st->mu);
        st->exited = true;
    }
    st->cv.notify_all();
}

void SlotMonitor::tick(const std::shared_ptr<State>& st, bool may_reinitialize) {
    const std::shared_ptr<Module> module = st->module.lock();
    if (!module) return;
    std::vector<std::shared_ptr<SlotWatcher>> watchers;
    {
        std::lock_guard lk(st->mu);
        std::erase_if(st->watchers, [](const auto& w) { return w.expired(); });
        for (const auto& w : st->watchers)
            if (auto s = w.lock()) watchers.push_back(std::move(s));
    }
    if (watchers.empty()) return;
    bool open = false;
    bool searching = false;
    for (const auto& w : watchers) {
        const WatchState s = w->watch_state();
        open = open || s.open;
        searching = searching || s.searching || s.stale;
    }
    // A module that reads its tokens only at C_Initialize (SoftHSM2) never lists a token created
    // later, nor objects it saw half-made: while none of its tokens is open and one is missing or
    // was read unfinished, initialize it afresh.
    if (may_reinitialize && searching && !open) module->reinitialize();
    std::vector<SlotToken> slots;
    try {
        slots = module->list_tokens();
    } catch (const std::exception& e) {
        std::lock_guard lk(st->mu);
        if (st->last_problem != e.what()) {
            st->last_problem = e.what();
            log::warning("module " + st->spec + ": cannot list its slots: " + e.what());
        }
        return;
    }
    {
        std::lock_guard lk(st->mu);
        st->last_problem.clear();
    }
    for (const auto& w : watchers) w->on_slots(slots);
}

}  // namespace keychaind::token
