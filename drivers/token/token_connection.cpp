// TokenConnection: session pool, bounded calls with one retry for a lost login or session, and
// the token's removal.
#include "token/token_connection.h"

#include "core/log.h"
#include "token/pkcs11_encoding.h"

namespace keychaind::token {
namespace {

std::string ms_text(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

// C_Login as the user; a session of this application that is logged in already is fine.
void log_in(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE h, const SecretBytes& pin) {
    const CK_RV rv = fn->C_Login(h, CKU_USER, const_cast<CK_UTF8CHAR*>(pin.data()), pin.size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) throw Pkcs11Error("C_Login", rv);
}

}  // namespace

TokenConnection::TokenConnection(std::shared_ptr<Module> module, std::shared_ptr<KeyLedger> ledger,
                                 std::string name, const SlotToken& slot, unsigned sessions,
                                 std::chrono::milliseconds call_timeout)
    : module_(std::move(module)),
      ledger_(std::move(ledger)),
      name_(std::move(name)),
      call_timeout_(call_timeout),
      slot_(slot.slot),
      info_(slot.info),
      label_(padded_text(slot.info.label, sizeof slot.info.label)),
      serial_(padded_text(slot.info.serialNumber, sizeof slot.info.serialNumber)),
      pool_(std::make_shared<Pool>()) {
    pool_->capacity = sessions == 0 ? 1 : sessions;
}

TokenConnection::~TokenConnection() { close(); }

KeychainError TokenConnection::timeout_error() const {
    return KeychainError(ErrorCode::TokenError,
                         who() + " did not answer within " + ms_text(call_timeout_));
}

// --- the pool ----------------------------------------------------------------------------

TokenConnection::Session TokenConnection::session() {
    const auto timeout = call_timeout_;
    const auto deadline = Clock::now() + timeout;
    std::unique_lock lk(pool_->mu);
    for (;;) {
        if (pool_->closed)
            throw KeychainError(ErrorCode::TokenError, who() + (gone_ ? " was removed" : " is closed"));
        if (pool_->stuck >= pool_->capacity)
            throw KeychainError(ErrorCode::TokenError,
                                who() + ": all " + std::to_string(pool_->capacity) +
                                    " of its sessions are stuck in calls it never answered");
        if (pool_->busy + pool_->stuck < pool_->capacity) {
            ++pool_->busy;
            Session::Lease lease;
            if (!pool_->idle.empty()) {
                lease = std::move(pool_->idle.back());
                pool_->idle.pop_back();
            }
            return Session(shared_from_this(), std::move(lease));
        }
        if (pool_->cv.wait_until(lk, deadline) == std::cv_status::timeout &&
            pool_->busy + pool_->stuck >= pool_->capacity && !pool_->closed)
            throw KeychainError(ErrorCode::TokenError,
                                who() + " did not answer within " + ms_text(timeout) + " (all " +
                                    std::to_string(pool_->capacity) + " of its sessions were busy)");
    }
}

void TokenConnection::close_lease(Session::Lease& lease) {
    if (lease.thread && lease.handle != CK_INVALID_HANDLE) {
        lease.thread->post([module = module_, h = lease.handle, gen = lease.generation] {
            auto gate = module->enter();
            if (module->generation() == gen) module->functions()->C_CloseSession(h);
        });
    }
    lease.thread.reset();  // the thread ends once the close ran
    lease.handle = CK_INVALID_HANDLE;
}

void TokenConnection::give_back(Session::Lease lease, bool discard, bool stuck) {
    std::lock_guard lk(pool_->mu);
    --pool_->busy;
    if (stuck) {
        // Never used again. If the call ever returns, its session is closed and the slot it
        // held in the pool comes free.
        ++pool_->stuck;
        if (lease.thread) {
            std::weak_ptr<Pool> pool = pool_;
            lease.thread->post([pool, module = module_, h = lease.handle, gen = lease.generation] {
                if (h != CK_INVALID_HANDLE) {
                    auto gate = module->enter();
                    if (module->generation() == gen) module->functions()->C_CloseSession(h);
                }
                if (auto p = pool.lock()) {
                    {
                        std::lock_guard lk2(p->mu);
                        --p->stuck;
                    }
                    p->cv.notify_all();
                }
            });
        }
    } else if (discard || pool_->closed) {
        close_lease(lease);
    } else {
        pool_->idle.push_back(std::move(lease));
    }
    pool_->cv.notify_all();
}

void TokenConnection::close() {
    std::lock_guard lk(pool_->mu);
    pool_->closed = true;
    for (auto& l : pool_->idle) close_lease(l);
    pool_->idle.clear();
    pool_->cv.notify_all();
}

bool TokenConnection::closed() const {
    std::lock_guard lk(pool_->mu);
    return pool_->closed;
}

// --- sessions ----------------------------------------------------------------------------

TokenConnection::Session::Session(Session&& o) noexcept
    : conn_(std::move(o.conn_)), lease_(std::move(o.lease_)), discard_(o.discard_), stuck_(o.stuck_) {}

TokenConnection::Session::~Session() {
    if (conn_) conn_->give_back(std::move(lease_), discard_, stuck_);
}

void TokenConnection::Session::open() {
    if (!lease_.thread) lease_.thread = std::make_shared<CallThread>("kc-token");
    const auto& module = conn_->module_;
    std::shared_ptr<const SecretBytes> pin;
    {
        std::lock_guard lk(conn_->mu_);
        pin = conn_->pin_;
    }
    struct Opened {
        CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
        uint64_t generation = 0;
    };
    auto out = std::make_shared<Opened>();
    bool done = false;
    try {
        done = lease_.thread->run(
            [module, slot = conn_->slot_, pin, out] {
                auto gate = module->enter();
                CK_FUNCTION_LIST* fn = module->functions();
                CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
                check_rv(fn->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &h), "C_OpenSession");
                if (pin) {
                    // Logged in already when another session of ours is (PKCS#11 logs in per
                    // application and token), which is the usual case.
                    CK_SESSION_INFO si{};
                    const CK_RV rv = fn->C_GetSessionInfo(h, &si);
                    try {
                        if (rv != CKR_OK) throw Pkcs11Error("C_GetSessionInfo", rv);
                        if (si.state == CKS_RO_PUBLIC_SESSION || si.state == CKS_RW_PUBLIC_SESSION)
                            log_in(fn, h, *pin);
                    } catch (...) {
                        fn->C_CloseSession(h);
                        throw;
                    }
                }
                out->handle = h;
                out->generation = module->generation();
            },
            Clock::now() + conn_->call_timeout_);
    } catch (const Pkcs11Error& e) {
        discard_ = true;
        if (rv_token_gone(e.rv())) conn_->mark_gone(e.what());
        throw TokenCallError(ErrorCode::TokenError,
                             conn_->who() + ": " + e.what(), e.rv());
    }
    if (!done) {
        stuck_ = true;
        throw conn_->timeout_error();
    }
    lease_.handle = out->handle;
    lease_.generation = out->generation;
}

void TokenConnection::Session::run_void(std::function<void(const CallContext&)> job) {
    if (!conn_ || stuck_) throw KeychainError(ErrorCode::Internal, "a token session was used after it failed");
    const auto& module = conn_->module_;
    bool reopened = false;
    bool logged_in_again = false;
    for (;;) {
        if (conn_->closed())
            throw KeychainError(ErrorCode::TokenError, conn_->who() + (conn_->gone() ? " was removed" : " is closed"));
        if (discard_ && lease_.handle != CK_INVALID_HANDLE) {
            // An earlier call on this lease failed in a way that leaves the session's state
            // unknown: a fresh one for this call.
            lease_.thread->post([module, h = lease_.handle, gen = lease_.generation] {
                auto gate = module->enter();
                if (module->generation() == gen) module->functions()->C_CloseSession(h);
            });
            lease_.handle = CK_INVALID_HANDLE;
        }
        discard_ = false;
        if (lease_.handle == CK_INVALID_HANDLE || lease_.generation != module->generation()) {
            lease_.handle = CK_INVALID_HANDLE;  // gone with a re-initialization: nothing to close
            open();
        }
        bool done = false;
        try {
            done = lease_.thread->run(
                [module, h = lease_.handle, gen = lease_.generation, job] {
                    auto gate = module->enter();
                    if (module->generation() != gen)
                        throw Pkcs11Error("the module was re-initialized; the session", CKR_SESSION_HANDLE_INVALID);
                    job(CallContext{module->functions(), h});
                },
                Clock::now() + conn_->call_timeout_);
        } catch (const Pkcs11Error& e) {
            if (rv_session_lost(e.rv()) && !reopened) {
                reopened = true;
                // Gone on the token's side, as it says; closed all the same in case it is not.
                lease_.thread->post([module, h = lease_.handle, gen = lease_.generation] {
                    auto gate = module->enter();
                    if (module->generation() == gen) module->functions()->C_CloseSession(h);
                });
                lease_.handle = CK_INVALID_HANDLE;
                continue;
            }
            std::shared_ptr<const SecretBytes> pin;
            {
                std::lock_guard lk(conn_->mu_);
                pin = conn_->pin_;
            }
            if (e.rv() == CKR_USER_NOT_LOGGED_IN && !logged_in_again && pin) {
                logged_in_again = true;
                log::info(conn_->who() + " logged us out; logging in again");
                bool relogged = false;
                try {
                    relogged = lease_.thread->run(
                        [module, h = lease_.handle, pin] {
                            auto gate = module->enter();
                            log_in(module->functions(), h, *pin);
                        },
                        Clock::now() + conn_->call_timeout_);
                } catch (const Pkcs11Error& le) {
                    discard_ = true;
                    if (rv_token_gone(le.rv())) conn_->mark_gone(le.what());
                    throw TokenCallError(ErrorCode::TokenError, conn_->who() + ": " + le.what(), le.rv());
                }
                if (!relogged) {
                    stuck_ = true;
                    throw conn_->timeout_error();
                }
                continue;
            }
            // The session's operation state is unknown now: it is closed, not reused.
            discard_ = true;
            if (rv_token_gone(e.rv())) conn_->mark_gone(e.what());
            throw TokenCallError(rv_unsupported(e.rv()) ? ErrorCode::Unsupported : ErrorCode::TokenError,
                                 conn_->who() + ": " + e.what(), e.rv());
        } catch (const TokenFault& e) {
            discard_ = true;
            throw KeychainError(ErrorCode::TokenError, conn_->who() + ": " + e.what());
        }
        if (!done) {
            stuck_ = true;
            throw conn_->timeout_error();
        }
        return;
    }
}

// --- login, origins, removal -------------------------------------------------------------

void TokenConnection::login(std::shared_ptr<const SecretBytes> pin) {
    Session s = session();
    s.run_void([pin](const CallContext& c) { log_in(c.fn, c.session, *pin); });
    std::lock_guard lk(mu_);
    pin_ = std::move(pin);
}

std::shared_ptr<const SecretBytes> TokenConnection::pin() const {
    std::lock_guard lk(mu_);
    return pin_;
}

bool TokenConnection::logged_in() const {
    std::lock_guard lk(mu_);
    return pin_ != nullptr;
}

void TokenConnection::set_locations(std::set<std::string> locations) {
    std::lock_guard lk(mu_);
    locations_ = std::move(locations);
}

std::set<std::string> TokenConnection::locations() const {
    std::lock_guard lk(mu_);
    return locations_;
}

bool TokenConnection::still_listed() {
    std::vector<SlotToken> slots;
    try {
        slots = module_->list_tokens();
    } catch (const std::exception&) {
        return true;  // the module did not say; the call's own error stands
    }
    for (const auto& s : slots)
        if (s.slot == slot_ && padded_text(s.info.label, sizeof s.info.label) == label_ &&
            padded_text(s.info.serialNumber, sizeof s.info.serialNumber) == serial_)
            return true;
    return false;
}

void TokenConnection::mark_gone(const std::string& why) {
    if (gone_.exchange(true)) return;
    close();
    const size_t n = ledger_->detach(locations(), AbsentReason{ErrorCode::TokenError, who() + " was removed"});
    // A connection that never got as far as its keys (opening a token that fails) says so quietly:
    // the attempt to open it logs its own line.
    log::write(n > 0 ? log::Level::Warning : log::Level::Debug,
               who() + " (serial " + log::escape(serial_) + ", slot " + std::to_string(slot_) + ") is gone: " + why +
                   "; " + std::to_string(n) + " key(s) absent until it is back");
}

}  // namespace keychaind::token
