// Token: one [[pkcs11.token]] — finding it on its module's slots, logging in, loading its keys,
// noticing it go and come back, and taking a PIN from PROVIDE.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/key_source.h"
#include "token/key_ledger.h"
#include "token/object_uri.h"
#include "token/slot_monitor.h"
#include "token/token_connection.h"

namespace keychaind::token {

class Token final : public SlotWatcher, public std::enable_shared_from_this<Token> {
public:
    // Throws TokenFault when the config's URIs do not parse (load_config has checked them).
    Token(TokenConfig cfg, ModuleSettings settings, std::shared_ptr<KeyLedger> ledger);
    ~Token() override;
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;

    const std::string& name() const { return cfg_.name; }
    // Whether `text` is this token's name, its configured URI, or a pkcs11: URI that matches the
    // token as last seen on its slot.
    bool named_by(std::string_view text) const;

    // Start, DISCOVER, reload: loads the module if need be, finds the token, opens it and (re)reads
    // its keys. A token waiting for a PIN that was refused is left alone. Never throws.
    ScanReport scan();
    // PROVIDE: logs in with `pin` and loads the keys; returns how many were added. Throws
    // KeychainError: DENIED "token \"web\": PIN incorrect", TOKEN_ERROR when absent or failing.
    size_t provide_pin(SecretBytes pin);
    // Look at the slots now.
    void wake();

    WatchState watch_state() const override;
    void on_slots(const std::vector<SlotToken>& slots) override;

private:
    // Why a token that is on a slot is not open, until something changes.
    enum class Hold { None, NoPin, WrongPin, PinLocked, Failed };

    bool ensure_module(ScanReport& report);
    void reconcile(const std::vector<SlotToken>& slots, bool scanning, ScanReport& report);
    size_t open(const SlotToken& slot, std::shared_ptr<const SecretBytes> provided, ScanReport& report);
    // Reads the token's keys and adds them. `only_new` (a poll while it settles): only objects not
    // seen on the token before are added, so a key FORGET dropped stays out until DISCOVER, and
    // none that went is taken away.
    size_t load_keys(ScanReport& report, bool only_new = false);
    void reopen_if_unfinished();
    void drop_connection();
    void hold(Hold why, const SlotToken& slot, const std::string& message, bool as_error);
    std::string who() const { return "token \"" + cfg_.name + "\""; }

    TokenConfig cfg_;
    ModuleSettings settings_;
    std::shared_ptr<KeyLedger> ledger_;
    Pkcs11Uri uri_;
    std::vector<Pkcs11Uri> selectors_;

    std::mutex mu_;  // everything below: one scan, PROVIDE or monitor reaction at a time
    std::shared_ptr<Module> module_;
    bool watching_ = false;
    std::shared_ptr<TokenConnection> conn_;
    Hold hold_ = Hold::None;
    CK_SLOT_ID hold_slot_ = 0;
    std::string hold_serial_;
    std::string hold_message_;  // logged once
    std::chrono::steady_clock::time_point hold_since_;
    std::chrono::steady_clock::duration retry_delay_{};  // before the monitor tries a Failed token again
    std::string last_failure_;  // the monitor logs a repeated failure once
    std::chrono::steady_clock::time_point settle_until_;  // keys are read again on each look until then
    size_t unfinished_objects_ = 0;                       // half-written, at the last read
    std::optional<std::chrono::steady_clock::time_point> unfinished_until_;  // reopens for them until,
                                                                        //   from its first opening
    std::optional<std::chrono::steady_clock::time_point> reopen_at_;        // one is due then
    std::chrono::steady_clock::duration reopen_delay_{};  // before the next one
    CK_SLOT_ID first_seen_slot_ = 0;                      // a token that just appeared is opened
    std::string first_seen_serial_;                       //   one look later
    std::set<std::string> logged_problems_;               // skipped keys, logged once a connection

    mutable std::mutex seen_mu_;
    std::optional<CK_TOKEN_INFO> seen_;  // the token as last found on a slot
    std::atomic<bool> open_{false};
    std::atomic<bool> searching_{true};
    std::atomic<bool> stale_{false};
};

}  // namespace keychaind::token
