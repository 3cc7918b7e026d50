// Module: one PKCS#11 module loaded through p11-kit and initialized, shared by every token on it
// in the process, finalized and unloaded when the last user lets go.
#pragma once

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "token/call_thread.h"
#include "token/pkcs11_error.h"

namespace keychaind::token {

class SlotMonitor;
class SlotWatcher;

// A slot with an initialized token whose C_GetTokenInfo answered.
struct SlotToken {
    CK_SLOT_ID slot = 0;
    CK_TOKEN_INFO info{};
};

struct ModuleSettings {
    std::chrono::milliseconds call_timeout{5000};
    std::chrono::milliseconds poll{1000};
};

class Module : public std::enable_shared_from_this<Module> {
public:
    // The module `spec` names: a p11-kit registry name, or an absolute path (the config allows
    // only listed ones). Its file and directories are checked (checked_module_path) before it is
    // loaded; every user of the same file in the process shares one Module. Loading and
    // C_Initialize(CKF_OS_LOCKING_OK) run on a thread of their own, bounded by call_timeout.
    // Throws TokenFault naming the module and the reason.
    static std::shared_ptr<Module> acquire(const std::string& spec, const ModuleSettings& settings);
    // Waits (up to `timeout`) for every module to be finalized and unloaded: at exit. false when
    // one is still loaded (a call stuck in it).
    static bool finish_unloading(std::chrono::milliseconds timeout);

    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    const std::string& spec() const { return spec_; }
    const std::string& path() const { return path_; }
    CK_FUNCTION_LIST* functions() const { return fn_; }
    // The settings of its latest user (a reload may change them while the module stays loaded).
    ModuleSettings settings() const;

    // Held (shared) by every call into the module, so re-initialization never runs under one.
    std::shared_lock<std::shared_timed_mutex> enter() const { return std::shared_lock(gate_); }
    // Bumped by reinitialize(): sessions opened under an older generation are gone.
    uint64_t generation() const { return generation_.load(); }

    // The slots with initialized tokens now (C_GetSlotList(CK_TRUE), C_GetTokenInfo), on the
    // module's control thread. Throws TokenFault (also when the module does not answer in time).
    std::vector<SlotToken> list_tokens();
    // C_Finalize and C_Initialize again, so a module that reads its tokens only at C_Initialize
    // (SoftHSM2) sees tokens created or deleted since. Only when no call is running; false if
    // none could be had within call_timeout or the module failed.
    bool reinitialize();

    // Presence: the module's monitor thread (started with the first watcher) tells `w` about the
    // slots whenever they change, or every poll interval when the module cannot block in
    // C_WaitForSlotEvent.
    void watch(const std::shared_ptr<SlotWatcher>& w);
    // Look at the slots now (a smart card reader came or went).
    void wake_monitor();

private:
    Module(std::string spec, std::string path, ModuleSettings settings);
    // Runs fn on the control thread with the call deadline; throws TokenFault on a timeout.
    void control(std::function<void()> fn);

    std::string spec_;
    std::string path_;
    void apply(const ModuleSettings& settings);

    mutable std::mutex settings_mu_;
    ModuleSettings settings_;
    CK_FUNCTION_LIST* fn_ = nullptr;
    bool finalize_ = false;  // this process's C_Initialize is ours to undo
    mutable std::shared_timed_mutex gate_;
    std::atomic<uint64_t> generation_{1};
    std::mutex control_mu_;
    std::unique_ptr<CallThread> control_;
    std::shared_ptr<std::atomic<int>> control_stuck_ = std::make_shared<std::atomic<int>>(0);
    std::mutex monitor_mu_;
    std::shared_ptr<SlotMonitor> monitor_;
};

}  // namespace keychaind::token
