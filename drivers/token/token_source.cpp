// TokenSource: the tokens of the config behind the KeySource, EventSource and PinConsumer faces.
#include "token/token_source.h"

#include "core/error.h"
#include "core/log.h"

namespace keychaind::token {

TokenSource::TokenSource(const Pkcs11Config& cfg, SourceHooks hooks) {
    ledger_->set_audit(std::move(hooks.audit));
    const ModuleSettings settings{std::chrono::milliseconds(cfg.call_timeout_ms), std::chrono::milliseconds(cfg.poll_ms)};
    for (const TokenConfig& t : cfg.tokens) {
        try {
            tokens_.push_back(std::make_shared<Token>(t, settings, ledger_));
        } catch (const TokenFault& e) {
            log::error("token \"" + t.name + "\" left out: " + e.what());
        }
    }
}

TokenSource::~TokenSource() { ledger_->stop(); }

ScanReport TokenSource::scan(Keychain& keychain) {
    ledger_->attach(keychain);
    ScanReport report;
    for (const auto& t : tokens_) {
        ScanReport r = t->scan();
        report.keys_added += r.keys_added;
        report.keys_seen += r.keys_seen;
        for (auto& p : r.problems) report.problems.push_back(std::move(p));
    }
    return report;
}

void TokenSource::on_event(Keychain&) {
    if (!readers_.drain()) return;
    log::debug("a smart card reader came or went; looking at the tokens' slots");
    for (const auto& t : tokens_) t->wake();
}

void TokenSource::stop() { ledger_->stop(); }

std::vector<std::shared_ptr<Token>> TokenSource::named(std::string_view token) const {
    std::vector<std::shared_ptr<Token>> out;
    for (const auto& t : tokens_)
        if (t->name() == token) return {t};
    for (const auto& t : tokens_)
        if (t->named_by(token)) out.push_back(t);
    return out;
}

bool TokenSource::has_token(std::string_view token) const { return !named(token).empty(); }

size_t TokenSource::provide_pin(Keychain& keychain, std::string_view token, SecretBytes pin) {
    ledger_->attach(keychain);
    const auto tokens = named(token);
    if (tokens.empty())
        throw KeychainError(ErrorCode::BadRequest, "no [[pkcs11.token]] is named \"" + log::escape(token) +
                                                       "\" or matches that URI");
    if (tokens.size() > 1) {
        std::string names;
        for (const auto& t : tokens) names += (names.empty() ? "\"" : ", \"") + t->name() + "\"";
        throw KeychainError(ErrorCode::BadRequest, "TOKEN_URI matches " + std::to_string(tokens.size()) +
                                                       " tokens (" + names + "); give one's name");
    }
    return tokens.front()->provide_pin(std::move(pin));
}

bool finish_token_modules(std::chrono::milliseconds timeout) { return Module::finish_unloading(timeout); }

}  // namespace keychaind::token
