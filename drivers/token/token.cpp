// Token: its states (absent, open, held for a PIN), transitions on scans, slot changes and PROVIDE.
#include "token/token.h"

#include <unistd.h>

#include <algorithm>
#include <map>

#include "core/log.h"
#include "token/pin_file.h"
#include "token/pkcs11_encoding.h"
#include "token/token_objects.h"

namespace keychaind::token {
namespace {

// A token that failed to open (not for its PIN) is tried again by the monitor after the poll
// interval, then after twice as long each time, up to this.
constexpr auto kMaxRetryDelay = std::chrono::seconds(5);
// For this long after a token is opened its keys are read again on every look at the slots.
constexpr auto kSettleTime = std::chrono::seconds(5);
// For this long after a token that appeared is first opened, a read with half-written objects has
// it reopened with its module initialized afresh (spaced like the retries above), so a slow writer
// is waited for.
constexpr auto kUnfinishedWindow = std::chrono::seconds(30);

// PINs given with PROVIDE, kept (in locked memory) for logging in again when the same token
// (module, label and serial) comes back, and across a reload, which makes new Token objects.
class RememberedPins {
public:
    static RememberedPins& get() {
        static RememberedPins* p = new RememberedPins;  // never destroyed: SecretBytes outlive exit order
        return *p;
    }
    std::shared_ptr<const SecretBytes> find(const std::string& key) {
        std::lock_guard lk(mu_);
        auto it = pins_.find(key);
        return it == pins_.end() ? nullptr : it->second;
    }
    void put(const std::string& key, std::shared_ptr<const SecretBytes> pin) {
        std::lock_guard lk(mu_);
        pins_[key] = std::move(pin);
    }
    void forget(const std::string& key) {
        std::lock_guard lk(mu_);
        pins_.erase(key);
    }

private:
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<const SecretBytes>> pins_;
};

std::string serial_of(const CK_TOKEN_INFO& info) { return padded_text(info.serialNumber, sizeof info.serialNumber); }
std::string label_of(const CK_TOKEN_INFO& info) { return padded_text(info.label, sizeof info.label); }

std::string pin_key(const std::string& module_path, const CK_TOKEN_INFO& info) {
    return module_path + "\n" + label_of(info) + "\n" + serial_of(info);
}

std::string describe(const SlotToken& s) {
    return "serial " + log::escape(serial_of(s.info)) + ", slot " + std::to_string(s.slot);
}

bool pin_rejected(CK_RV rv) { return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE; }

}  // namespace

Token::Token(TokenConfig cfg, ModuleSettings settings, std::shared_ptr<KeyLedger> ledger)
    : cfg_(std::move(cfg)),
      settings_(settings),
      ledger_(std::move(ledger)),
      uri_(Pkcs11Uri::for_token(cfg_.uri)) {
    for (const auto& k : cfg_.keys) selectors_.push_back(Pkcs11Uri::for_object(k));
}

Token::~Token() {
    if (conn_) conn_->close();
}

bool Token::named_by(std::string_view text) const {
    if (text == cfg_.name || text == cfg_.uri) return true;
    if (text.rfind("pkcs11:", 0) != 0) return false;
    std::optional<CK_TOKEN_INFO> seen;
    {
        std::lock_guard lk(seen_mu_);
        seen = seen_;
    }
    if (!seen) return false;
    try {
        return Pkcs11Uri::for_token(std::string(text)).matches_token(*seen);
    } catch (const TokenFault&) {
        return false;
    }
}

WatchState Token::watch_state() const { return WatchState{open_.load(), searching_.load(), stale_.load()}; }

void Token::wake() {
    std::shared_ptr<Module> m;
    {
        std::unique_lock lk(mu_, std::try_to_lock);
        if (!lk) return;
        m = module_;
    }
    if (m) m->wake_monitor();
}

bool Token::ensure_module(ScanReport& report) {
    if (!module_) {
        try {
            module_ = Module::acquire(cfg_.module, settings_);
        } catch (const TokenFault& e) {
            std::string line = who() + ": " + e.what();
            log::error(line);
            report.problems.push_back(std::move(line));
            return false;
        }
    }
    if (!watching_) {
        module_->watch(shared_from_this());
        watching_ = true;
    }
    return true;
}

// --- entry points ---------------------------------------------------------------------------

ScanReport Token::scan() {
    std::lock_guard lk(mu_);
    ScanReport report;
    if (ledger_->stopped() || !ensure_module(report)) return report;
    std::vector<SlotToken> slots;
    try {
        slots = module_->list_tokens();
    } catch (const TokenFault& e) {
        std::string line = who() + ": " + e.what();
        log::warning(line);
        report.problems.push_back(std::move(line));
        return report;
    }
    reconcile(slots, true, report);
    return report;
}

void Token::on_slots(const std::vector<SlotToken>& slots) {
    // A scan or PROVIDE at work has the newest view anyway; the next tick comes soon.
    std::unique_lock lk(mu_, std::try_to_lock);
    if (!lk || ledger_->stopped()) return;
    ScanReport report;
    reconcile(slots, false, report);
}

size_t Token::provide_pin(SecretBytes pin) {
    auto provided = std::make_shared<const SecretBytes>(std::move(pin));
    std::lock_guard lk(mu_);
    ScanReport report;
    if (ledger_->stopped()) throw KeychainError(ErrorCode::TokenError, who() + " is being reopened; try again");
    if (!ensure_module(report)) throw KeychainError(ErrorCode::TokenError, report.problems.front());
    std::vector<SlotToken> slots;
    try {
        slots = module_->list_tokens();
    } catch (const TokenFault& e) {
        throw KeychainError(ErrorCode::TokenError, who() + ": " + e.what());
    }
    if (conn_ && !conn_->closed()) {
        // Open already (logged in, or a token that needs no login): read its keys again.
        reconcile(slots, true, report);
        if (conn_) return report.keys_added;
    }
    const SlotToken* found = nullptr;
    for (const auto& s : slots)
        if (uri_.matches_token(s.info)) {
            found = &s;
            break;
        }
    if (found == nullptr) {
        searching_ = true;
        throw KeychainError(ErrorCode::TokenError, who() + " is not present (no slot holds a token matching " +
                                                       cfg_.uri + ")");
    }
    return open(*found, std::move(provided), report);
}

// --- state changes ---------------------------------------------------------------------------

void Token::reconcile(const std::vector<SlotToken>& slots, bool scanning, ScanReport& report) {
    if (conn_) {
        bool listed = false;
        for (const auto& s : slots)
            listed = listed || (s.slot == conn_->slot() && label_of(s.info) == conn_->label() &&
                                serial_of(s.info) == conn_->serial());
        if (!conn_->closed() && !listed) conn_->mark_gone("its module no longer lists it");
        if (conn_->closed()) {
            drop_connection();
        } else {
            // A token that just appeared may still be being filled (a fresh token whose keys
            // are imported next): read its keys again on each look for a little while, and for as
            // long as a reopen for half-written objects is due.
            if (scanning || Clock::now() < settle_until_ || reopen_at_) {
                try {
                    ScanReport read;
                    load_keys(read, !scanning);
                    if (!scanning) reopen_if_unfinished();
                    report.keys_added += read.keys_added;
                    report.keys_seen += read.keys_seen;
                    for (auto& p : read.problems) report.problems.push_back(std::move(p));
                } catch (const KeychainError& e) {
                    std::string line = std::string("reading the keys of ") + who() + ": " + e.what();
                    log::write(scanning ? log::Level::Warning : log::Level::Debug, line);
                    report.problems.push_back(std::move(line));
                    if (conn_ && conn_->closed()) drop_connection();
                }
            }
            return;
        }
    }
    std::vector<const SlotToken*> matches;
    for (const auto& s : slots)
        if (uri_.matches_token(s.info)) matches.push_back(&s);
    if (matches.empty()) {
        if (scanning || !searching_)
            log::info(who() + ": no token matching " + cfg_.uri + " on the slots of module " + module_->spec() +
                      "; waiting for one");
        searching_ = true;
        hold_ = Hold::None;  // whatever held it went with it
        last_failure_.clear();
        first_seen_serial_.clear();
        unfinished_until_.reset();
        reopen_at_.reset();
        return;
    }
    searching_ = false;
    const SlotToken& slot = *matches.front();
    {
        std::lock_guard lk(seen_mu_);
        seen_ = slot.info;
    }
    if (matches.size() > 1 && scanning)
        log::warning(who() + ": " + std::to_string(matches.size()) + " tokens match " + cfg_.uri + "; using the one in slot " +
                     std::to_string(slot.slot) + " (name it by serial to choose)");
    if (hold_ != Hold::None && hold_slot_ == slot.slot && hold_serial_ == serial_of(slot.info)) {
        // A refused PIN is never tried again by itself: only PROVIDE or a reload do that.
        if (hold_ == Hold::WrongPin) return;
        const bool retry_failed = hold_ == Hold::Failed && Clock::now() - hold_since_ >= retry_delay_;
        if (!scanning && !retry_failed) return;
    }
    if (!scanning && (first_seen_slot_ != slot.slot || first_seen_serial_ != serial_of(slot.info))) {
        // Just appeared: whoever makes it (a fresh token being filled) gets one look's time.
        first_seen_slot_ = slot.slot;
        first_seen_serial_ = serial_of(slot.info);
        unfinished_until_.reset();
        return;
    }
    const bool retrying = hold_ == Hold::Failed;
    try {
        ScanReport opened;
        open(slot, nullptr, opened);
        if (!scanning) reopen_if_unfinished();
        report.keys_added += opened.keys_added;
        report.keys_seen += opened.keys_seen;
        for (auto& p : opened.problems) report.problems.push_back(std::move(p));
        last_failure_.clear();
        retry_delay_ = settings_.poll;
    } catch (const KeychainError& e) {
        const std::string line = who() + " (" + describe(slot) + ") could not be opened: " + e.what();
        if (scanning || line != last_failure_) log::warning(line);
        last_failure_ = line;
        report.problems.push_back(line);
        if (hold_ == Hold::None) {
            retry_delay_ = retrying ? std::min<Clock::duration>(2 * retry_delay_, kMaxRetryDelay) : settings_.poll;
            hold(Hold::Failed, slot, "", false);
        }
        // The module may hold a view of the token from before it was finished (SoftHSM2 keeps a
        // token's PINs as they were at C_Initialize: one seen between C_InitToken and C_InitPIN
        // answers CKR_USER_PIN_NOT_INITIALIZED until initialized again): retry on a fresh one.
        if (hold_ == Hold::Failed) stale_ = true;
    }
}

void Token::hold(Hold why, const SlotToken& slot, const std::string& message, bool as_error) {
    const bool same = hold_ == why && hold_slot_ == slot.slot && hold_serial_ == serial_of(slot.info) &&
                      hold_message_ == message;
    hold_ = why;
    hold_message_ = message;
    hold_slot_ = slot.slot;
    hold_serial_ = serial_of(slot.info);
    hold_since_ = Clock::now();
    if (same || message.empty()) return;
    if (as_error)
        log::error(message);
    else
        log::info(message);
}

// A token read while another process was still filling it can show half-written objects, and
// SoftHSM2 keeps showing them so until it is initialized again. While the last read found such
// objects (within kUnfinishedWindow of its first opening), the token is closed and the monitor
// asked for a fresh C_Initialize before it is opened again: one poll after the read, then twice
// as long each time, up to kMaxRetryDelay. Until then it stays open and serves what it read.
void Token::reopen_if_unfinished() {
    const auto now = Clock::now();
    if (unfinished_objects_ == 0 || !conn_ || !unfinished_until_ || now >= *unfinished_until_) {
        reopen_at_.reset();
        return;
    }
    if (!reopen_at_) {
        reopen_at_ = now + reopen_delay_;
        reopen_delay_ = std::min<Clock::duration>(2 * reopen_delay_, kMaxRetryDelay);
        return;
    }
    if (now < *reopen_at_) return;
    reopen_at_.reset();
    log::info(who() + " looks unfinished (" + std::to_string(unfinished_objects_) +
              " half-written object(s)); reopening it once its module is initialized afresh");
    ledger_->detach(conn_->locations(), AbsentReason{ErrorCode::TokenError, who() + " is being reopened"});
    drop_connection();
    stale_ = true;
}

void Token::drop_connection() {
    if (conn_ && conn_->gone())
        ledger_->audit(SourceEvent{"token-removed", {{"token", cfg_.name}, {"label", conn_->label()}, {"serial", conn_->serial()}}});
    if (conn_) conn_->close();
    conn_.reset();
    open_ = false;
}

size_t Token::open(const SlotToken& slot, std::shared_ptr<const SecretBytes> provided, ScanReport& report) {
    drop_connection();
    auto conn = std::make_shared<TokenConnection>(module_, ledger_, cfg_.name, slot, cfg_.sessions, settings_.call_timeout);
    const std::string at = who() + " (" + describe(slot) + ")";
    const std::string remembered_key = pin_key(module_->path(), slot.info);
    if ((slot.info.flags & CKF_LOGIN_REQUIRED) != 0) {
        if ((slot.info.flags & CKF_USER_PIN_LOCKED) != 0) {
            hold(Hold::PinLocked, slot,
                 at + ": the user PIN is locked (too many wrong PINs); unlock it with the SO PIN, then PROVIDE "
                      "the PIN or reload",
                 true);
            throw KeychainError(ErrorCode::TokenError, who() + ": the user PIN is locked");
        }
        std::shared_ptr<const SecretBytes> pin = provided;
        std::string origin = "the PIN given with PROVIDE";
        if (!pin && (pin = RememberedPins::get().find(remembered_key))) origin = "the PIN given earlier with PROVIDE";
        if (!pin && !cfg_.pin_file.empty()) {
            try {
                pin = std::make_shared<const SecretBytes>(read_pin_file(cfg_.pin_file, geteuid()));
                origin = "pin_file " + log::escape(cfg_.pin_file, 1024);
            } catch (const TokenFault& e) {
                hold(Hold::Failed, slot, at + ": cannot use its PIN: " + e.what(), true);
                report.problems.push_back(who() + ": " + e.what());
                return 0;
            }
        }
        if (!pin) {
            hold(Hold::NoPin, slot,
                 at + " needs a PIN: keychainctl provide-pin " + cfg_.name + " (or set pin_file)", false);
            return 0;
        }
        try {
            conn->login(pin);
        } catch (const TokenCallError& e) {
            RememberedPins::get().forget(remembered_key);
            if (pin_rejected(e.rv())) {
                hold(Hold::WrongPin, slot,
                     at + ": PIN incorrect (" + origin + ", " + ckr_name(e.rv()) +
                         "); it is not tried again until a PIN comes with PROVIDE or the daemon reloads",
                     true);
                if (provided) throw KeychainError(ErrorCode::Denied, who() + ": PIN incorrect");
                return 0;
            }
            if (e.rv() == CKR_PIN_LOCKED) {
                hold(Hold::PinLocked, slot,
                     at + ": the user PIN is locked (" + origin +
                         " was refused with CKR_PIN_LOCKED); unlock it with the SO PIN, then PROVIDE the PIN or reload",
                     true);
                throw KeychainError(ErrorCode::TokenError, who() + ": the user PIN is locked");
            }
            if (e.rv() == CKR_PIN_EXPIRED) {
                hold(Hold::WrongPin, slot, at + ": the user PIN has expired (" + origin + "); set a new one", true);
                throw KeychainError(ErrorCode::TokenError, who() + ": the user PIN has expired");
            }
            throw;
        }
        if (provided) RememberedPins::get().put(remembered_key, provided);
    }
    hold_ = Hold::None;
    conn_ = conn;
    open_ = true;
    stale_ = false;
    logged_problems_.clear();
    settle_until_ = Clock::now() + std::max<Clock::duration>(kSettleTime, 5 * settings_.poll);
    reopen_at_.reset();
    if (!unfinished_until_) {
        unfinished_until_ = Clock::now() + kUnfinishedWindow;
        reopen_delay_ = settings_.poll;
    }
    size_t added = 0;
    try {
        added = load_keys(report);
    } catch (const KeychainError&) {
        drop_connection();
        throw;
    }
    log::info(at + " is open through module " + module_->spec() + ": " + std::to_string(conn_->locations().size()) +
              " key(s)");
    ledger_->audit(SourceEvent{"token-inserted",
                               {{"token", cfg_.name},
                                {"label", conn_->label()},
                                {"serial", conn_->serial()},
                                {"keys", std::to_string(conn_->locations().size())}}});
    return added;
}

size_t Token::load_keys(ScanReport& report, bool only_new) {
    const TokenKeyScan scan = read_token_keys(conn_, selectors_);
    unfinished_objects_ = scan.unfinished;
    for (const auto& p : scan.problems) {
        if (logged_problems_.insert(p).second) log::warning(p);
        report.problems.push_back(p);
    }
    std::set<std::string> found;
    for (const auto& k : scan.keys) found.insert(k.location);
    // Known to the connection before the keys are added, so a removal meanwhile detaches them too.
    std::set<std::string> before = conn_->locations();
    std::set<std::string> all = before;
    all.insert(found.begin(), found.end());
    conn_->set_locations(all);
    size_t added = 0;
    for (const auto& k : scan.keys) {
        if (only_new && before.count(k.location) != 0) continue;
        const auto outcome = ledger_->add(k.key, k.location, cfg_.name);
        if (!outcome) break;  // stopped: a reload's new source takes over
        ++report.keys_seen;
        if (*outcome == Keychain::AddOutcome::Added) {
            ++added;
            log::debug(who() + ": key " + k.key->id().hex() + " \"" + log::escape(k.key->label()) + "\" from " +
                       log::escape(k.location, 1024));
        }
    }
    // Objects deleted from the token since the last read. Not on a look while it settles: a token
    // being deleted shows its objects going before itself, and its keys are to answer that the
    // token was removed. A key deleted alone answers TOKEN_ERROR at its next use, and goes at DISCOVER.
    if (!only_new) {
        std::set<std::string> gone;
        for (const auto& l : before)
            if (found.count(l) == 0) gone.insert(l);
        ledger_->detach(gone, std::nullopt);
        conn_->set_locations(found);
    }
    // Gone while the keys were read: mark_gone may have run before some were added.
    if (conn_->gone()) ledger_->detach(conn_->locations(), AbsentReason{ErrorCode::TokenError, who() + " was removed"});
    report.keys_added += added;
    return added;
}

}  // namespace keychaind::token
