// TokenConnection: one token found on a slot — its session pool, the threads its calls run on,
// its login, and what happens when it goes away. Keys from the token hold it.
#pragma once

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/secret_bytes.h"
#include "token/call_thread.h"
#include "token/key_ledger.h"
#include "token/pkcs11_module.h"

namespace keychaind::token {

// A token call that failed with a CK_RV the caller may want to look at (a PIN that is wrong, a
// key the token cannot digest). The code is TOKEN_ERROR, or UNSUPPORTED for a mechanism or key
// function the token refuses.
class TokenCallError : public KeychainError {
public:
    TokenCallError(ErrorCode code, const std::string& message, CK_RV rv) : KeychainError(code, message), rv_(rv) {}
    CK_RV rv() const noexcept { return rv_; }

private:
    CK_RV rv_;
};

// What a job gets: the module's functions and an open (and, when the token wants it, logged-in)
// session. Jobs run on a CallThread: they own what they use and may outlive their caller.
struct CallContext {
    CK_FUNCTION_LIST* fn;
    CK_SESSION_HANDLE session;
};

class TokenConnection : public std::enable_shared_from_this<TokenConnection> {
public:
    TokenConnection(std::shared_ptr<Module> module, std::shared_ptr<KeyLedger> ledger, std::string name,
                    const SlotToken& slot, unsigned sessions, std::chrono::milliseconds call_timeout);
    ~TokenConnection();
    TokenConnection(const TokenConnection&) = delete;
    TokenConnection& operator=(const TokenConnection&) = delete;

    const std::string& name() const { return name_; }
    CK_SLOT_ID slot() const { return slot_; }
    const CK_TOKEN_INFO& info() const { return info_; }
    const std::string& label() const { return label_; }
    const std::string& serial() const { return serial_; }
    const std::shared_ptr<Module>& module() const { return module_; }
    // "token \"web\""
    std::string who() const { return "token \"" + name_ + "\""; }

    // A session leased from the pool for a sequence of calls; back to the pool when it goes.
    class Session {
    public:
        Session(Session&& o) noexcept;
        Session& operator=(Session&&) = delete;
        ~Session();

        // Runs job on this session's thread, bounded by the call timeout. On
        // CKR_USER_NOT_LOGGED_IN it logs in once and tries again, on a lost session it opens
        // another and tries again, on a gone token it marks the connection gone. Throws
        // KeychainError: TOKEN_ERROR "token \"web\" did not answer within N ms", TokenCallError
        // for another CK_RV, TOKEN_ERROR for a TokenFault; a KeychainError from the job as it is.
        template <class R>
        R run(std::function<R(const CallContext&)> job) {
            auto out = std::make_shared<std::optional<R>>();
            run_void([out, job = std::move(job)](const CallContext& c) { *out = job(c); });
            return std::move(**out);
        }
        void run_void(std::function<void(const CallContext&)> job);
        // False once a call on it did not return in time: nothing more can run on it.
        bool usable() const { return !stuck_; }

    private:
        friend class TokenConnection;
        struct Lease {
            std::shared_ptr<CallThread> thread;
            CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
            uint64_t generation = 0;
        };
        Session(std::shared_ptr<TokenConnection> conn, Lease lease) : conn_(std::move(conn)), lease_(std::move(lease)) {}
        void open();
        std::shared_ptr<TokenConnection> conn_;
        Lease lease_;
        bool discard_ = false;  // its state is unknown: close it rather than reuse it
        bool stuck_ = false;
    };
    // Waits (up to the call timeout) for a free session. Throws KeychainError(TOKEN_ERROR) when the
    // connection is closed, every session is stuck in a call that never returned, or none came free.
    Session session();

    // Logs in as the user with `pin` (CKR_USER_ALREADY_LOGGED_IN is fine) and keeps it for
    // logging in again. Throws TokenCallError (rv CKR_PIN_INCORRECT, CKR_PIN_LOCKED, …).
    void login(std::shared_ptr<const SecretBytes> pin);
    bool logged_in() const;
    // The PIN logged in with (for a key that wants it again for each use); null when none.
    std::shared_ptr<const SecretBytes> pin() const;

    // The origins this connection's keys were added under (so they go when it goes).
    void set_locations(std::set<std::string> locations);
    std::set<std::string> locations() const;

    // Whether the module still lists this token (same slot, label and serial).
    bool still_listed();
    // The token went away: no more calls, and its keys become absent with TOKEN_ERROR
    // "token \"web\" was removed". Logged once with `why`.
    void mark_gone(const std::string& why);
    // No more calls; idle sessions are closed now, busy ones when they come back.
    void close();
    bool closed() const;
    bool gone() const { return gone_.load(); }

private:
    struct Pool {
        std::mutex mu;
        std::condition_variable cv;
        std::vector<Session::Lease> idle;
        unsigned capacity = 1;
        unsigned busy = 0;
        unsigned stuck = 0;
        bool closed = false;
    };
    void give_back(Session::Lease lease, bool discard, bool stuck);
    void close_lease(Session::Lease& lease);
    KeychainError timeout_error() const;

    std::shared_ptr<Module> module_;
    std::shared_ptr<KeyLedger> ledger_;
    std::string name_;
    std::chrono::milliseconds call_timeout_;
    CK_SLOT_ID slot_;
    CK_TOKEN_INFO info_;
    std::string label_;
    std::string serial_;
    std::shared_ptr<Pool> pool_;
    mutable std::mutex mu_;  // pin_, locations_
    std::shared_ptr<const SecretBytes> pin_;
    std::set<std::string> locations_;
    std::atomic<bool> gone_{false};
};

}  // namespace keychaind::token
