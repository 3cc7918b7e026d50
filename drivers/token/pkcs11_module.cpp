// Module: p11-kit loading, C_Initialize/C_Finalize, the control thread, one instance per file.
#include "token/pkcs11_module.h"

#include <p11-kit/p11-kit.h>
#include <pthread.h>

#include <future>
#include <map>
#include <thread>

#include "core/crypto_backend.h"
#include "core/log.h"
#include "token/module_file.h"
#include "token/slot_monitor.h"

namespace keychaind::token {
namespace {

constexpr CK_ULONG kMaxSlots = 1024;

struct RegistryEntry {
    std::weak_ptr<Module> module;
    std::shared_ptr<std::promise<void>> unloaded = std::make_shared<std::promise<void>>();
    std::shared_future<void> unloaded_future = unloaded->get_future().share();
};

struct Registry {
    std::mutex mu;
    std::map<std::string, RegistryEntry> entries;  // by the checked file path
};

// Never destroyed: a finalizer thread may still reach it while the process exits.
Registry& registry() {
    static Registry* r = new Registry;
    return *r;
}

std::string ms_text(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

struct Loaded {
    CK_FUNCTION_LIST* fn = nullptr;
    bool ours = false;
    std::string error;
};

// dlopen (through p11-kit, unmanaged: the module's own functions) and C_Initialize.
void load_and_initialize(const std::string& file, Loaded& out) {
    CK_FUNCTION_LIST* fn = p11_kit_module_load(file.c_str(), P11_KIT_MODULE_UNMANAGED);
    if (fn == nullptr) {
        const char* why = p11_kit_message();
        out.error = std::string("p11-kit cannot load it: ") + (why != nullptr ? why : "unknown error");
        return;
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    const CK_RV rv = fn->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        p11_kit_module_release(fn);
        out.error = "C_Initialize failed: " + ckr_name(rv);
        return;
    }
    out.fn = fn;
    out.ours = rv == CKR_OK;  // already initialized: someone else in the process finalizes it
}

}  // namespace

Module::Module(std::string spec, std::string path, ModuleSettings settings)
    : spec_(std::move(spec)), path_(std::move(path)), settings_(settings) {}

std::shared_ptr<Module> Module::acquire(const std::string& spec, const ModuleSettings& settings) {
    const std::string wanted = spec.empty() || spec[0] == '/' ? spec : registered_module_path(spec);
    std::string file;
    try {
        file = checked_module_path(wanted);
    } catch (const TokenFault& e) {
        throw TokenFault("module " + spec + " refused: " + e.what());
    }
    const std::string shown = spec == file ? file : spec + " (" + file + ")";
    Registry& reg = registry();
    std::unique_lock lk(reg.mu);
    for (;;) {
        auto it = reg.entries.find(file);
        if (it == reg.entries.end()) break;
        if (auto m = it->second.module.lock()) {
            m->apply(settings);
            return m;
        }
        // Let go of by its last user and not yet finalized: wait, so two C_Initialize never overlap.
        const auto unloaded = it->second.unloaded_future;
        lk.unlock();
        if (unloaded.wait_for(settings.call_timeout) != std::future_status::ready)
            throw TokenFault("module " + shown + " is still being finalized");
        lk.lock();
    }
    // Loading runs under the registry lock: nobody else loads the same file meanwhile.
    std::shared_ptr<Module> m(new Module(spec, file, settings));
    m->control_ = std::make_unique<CallThread>("kc-p11-ctl");
    auto loaded = std::make_shared<Loaded>();
    if (!m->control_->run([loaded, file] { load_and_initialize(file, *loaded); },
                          Clock::now() + settings.call_timeout)) {
        m->control_.reset();
        // The thread stays behind, stuck in the module's constructor or C_Initialize.
        throw TokenFault("module " + shown + " did not load and initialize within " + ms_text(settings.call_timeout));
    }
    if (!loaded->error.empty()) throw TokenFault("module " + shown + ": " + loaded->error);
    m->fn_ = loaded->fn;
    m->finalize_ = loaded->ours;
    reg.entries[file] = RegistryEntry{};
    reg.entries[file].module = m;
    log::info("PKCS#11 module " + shown + " loaded" +
              (loaded->ours ? "" : " (already initialized in this process)"));
    return m;
}

ModuleSettings Module::settings() const {
    std::lock_guard lk(settings_mu_);
    return settings_;
}

void Module::apply(const ModuleSettings& settings) {
    {
        std::lock_guard lk(settings_mu_);
        settings_ = settings;
    }
    std::lock_guard lk(monitor_mu_);
    if (monitor_) monitor_->set_settings(settings);
}

bool Module::finish_unloading(std::chrono::milliseconds timeout) {
    std::vector<std::shared_future<void>> pending;
    {
        Registry& reg = registry();
        std::lock_guard lk(reg.mu);
        // Live ones too: the last session closes may still be on their way.
        for (const auto& [file, e] : reg.entries) pending.push_back(e.unloaded_future);
    }
    const auto deadline = Clock::now() + timeout;
    bool all = true;
    for (auto& f : pending) all = f.wait_until(deadline) == std::future_status::ready && all;
    return all;
}

Module::~Module() {
    std::shared_ptr<SlotMonitor> monitor;
    {
        std::lock_guard lk(monitor_mu_);
        monitor = monitor_;
    }
    if (monitor) monitor->stop();
    control_.reset();
    if (fn_ == nullptr) return;
    // Finalizing may take a while (or hang in a broken module): never on the caller's thread,
    // which may be the event loop during a reload.
    std::thread([fn = fn_, finalize = finalize_, monitor, path = path_, spec = spec_,
                 timeout = settings().call_timeout] {
        pthread_setname_np(pthread_self(), "kc-p11-fini");
        if (finalize) {
            const CK_RV rv = fn->C_Finalize(nullptr);
            if (rv != CKR_OK) log::warning("module " + spec + ": C_Finalize failed: " + ckr_name(rv));
        }
        // A monitor blocked in C_WaitForSlotEvent returns from it once C_Finalize ran.
        if (!monitor || monitor->wait_exited(Clock::now() + timeout))
            p11_kit_module_release(fn);
        else
            log::warning("module " + spec + " stays loaded: its monitor thread did not leave it");
        Registry& reg = registry();
        std::shared_ptr<std::promise<void>> done;
        {
            std::lock_guard lk(reg.mu);
            if (auto it = reg.entries.find(path); it != reg.entries.end() && it->second.module.expired()) {
                done = it->second.unloaded;
                reg.entries.erase(it);
            }
        }
        log::debug("module " + spec + " finalized and unloaded");
        release_thread_crypto_state();  // before the exit-time wait below can let the process end
        if (done) done->set_value();
    }).detach();
}

void Module::control(std::function<void()> fn) {
    std::lock_guard lk(control_mu_);
    if (control_stuck_->load() > 0)
        throw TokenFault("module " + spec_ + " has not answered an earlier call yet");
    if (!control_) control_ = std::make_unique<CallThread>("kc-p11-ctl");
    auto self = shared_from_this();  // the job keeps the module loaded, even if it is abandoned
    const auto timeout = settings().call_timeout;
    if (control_->run([self, fn = std::move(fn)] { fn(); }, Clock::now() + timeout)) return;
    control_stuck_->fetch_add(1);
    control_->post([stuck = control_stuck_] { stuck->fetch_sub(1); });
    control_.reset();
    throw TokenFault("module " + spec_ + " did not answer within " + ms_text(timeout));
}

std::vector<SlotToken> Module::list_tokens() {
    auto out = std::make_shared<std::vector<SlotToken>>();
    control([this, out] {
        auto gate = enter();
        CK_ULONG n = 0;
        check_rv(fn_->C_GetSlotList(CK_TRUE, nullptr, &n), "C_GetSlotList");
        std::vector<CK_SLOT_ID> ids;
        for (int attempt = 0;; ++attempt) {
            if (n > kMaxSlots) throw TokenFault("C_GetSlotList reports " + std::to_string(n) + " slots");
            ids.resize(n);
            CK_ULONG got = n;
            const CK_RV rv = fn_->C_GetSlotList(CK_TRUE, ids.data(), &got);
            if (rv == CKR_BUFFER_TOO_SMALL && attempt < 3) {  // a token arrived between the calls
                n = got > n ? got : n + 1;
                continue;
            }
            check_rv(rv, "C_GetSlotList");
            if (got > ids.size())
                throw TokenFault("C_GetSlotList returned " + std::to_string(got) + " slots for room for " +
                                 std::to_string(ids.size()));
            ids.resize(got);
            break;
        }
        for (const CK_SLOT_ID id : ids) {
            SlotToken t;
            t.slot = id;
            // A token deleted under the module (SoftHSM2) or half-inserted answers an error here.
            if (fn_->C_GetTokenInfo(id, &t.info) != CKR_OK) continue;
            if ((t.info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
            out->push_back(t);
        }
    });
    return std::move(*out);
}

bool Module::reinitialize() {
    auto ok = std::make_shared<bool>(false);
    try {
        control([this, ok] {
            // Exclusive: no call runs in the module meanwhile. A module stuck in a call keeps its
            // gate, and is never re-initialized under it.
            if (!finalize_) return;  // initialized by someone else in the process: not ours to redo
            std::unique_lock ex(gate_, std::defer_lock);
            if (!ex.try_lock_for(settings().call_timeout / 2)) return;
            const CK_RV fin = fn_->C_Finalize(nullptr);
            if (fin != CKR_OK && fin != CKR_CRYPTOKI_NOT_INITIALIZED)
                log::debug("module " + spec_ + ": C_Finalize before re-initializing: " + ckr_name(fin));
            CK_C_INITIALIZE_ARGS args{};
            args.flags = CKF_OS_LOCKING_OK;
            const CK_RV rv = fn_->C_Initialize(&args);
            generation_.fetch_add(1);
            if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
                log::warning("module " + spec_ + ": C_Initialize again failed: " + ckr_name(rv));
                return;
            }
            *ok = true;
        });
    } catch (const TokenFault& e) {
        log::debug(std::string("re-initializing: ") + e.what());
        return false;
    }
    return *ok;
}

void Module::watch(const std::shared_ptr<SlotWatcher>& w) {
    std::shared_ptr<SlotMonitor> monitor;
    {
        std::lock_guard lk(monitor_mu_);
        if (!monitor_) monitor_ = std::make_shared<SlotMonitor>(weak_from_this(), fn_, settings(), spec_);
        monitor = monitor_;
    }
    monitor->add(w);
}

void Module::wake_monitor() {
    std::lock_guard lk(monitor_mu_);
    if (monitor_) monitor_->wake();
}

}  // namespace keychaind::token
