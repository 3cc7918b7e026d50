// TokenSource: the key source for every [[pkcs11.token]] — scans, PROVIDE with a PIN, and
// smart card readers coming and going.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/key_source.h"
#include "token/key_ledger.h"
#include "token/reader_events.h"
#include "token/token.h"

namespace keychaind::token {

class TokenSource final : public KeySource, public EventSource, public PinConsumer {
public:
    // Nothing is loaded here (the caller may be the event loop, and may not have forked yet):
    // modules are loaded by the first scan.
    explicit TokenSource(const Pkcs11Config& cfg, SourceHooks hooks = {});
    ~TokenSource() override;

    std::string_view name() const override { return "tokens"; }
    // Opens every configured token that is present and (re)reads its keys. Problems are logged
    // and reported, never thrown.
    ScanReport scan(Keychain& keychain) override;

    int event_fd() const override { return readers_.fd(); }
    void on_event(Keychain& keychain) override;
    // Reload or shutdown: this source adds no key any more and its keys are detached (absent,
    // TOKEN_ERROR "token \"web\" is being reopened") for the next source to add again.
    void stop() override;

    bool has_token(std::string_view token) const override;
    size_t provide_pin(Keychain& keychain, std::string_view token, SecretBytes pin) override;

private:
    std::vector<std::shared_ptr<Token>> named(std::string_view token) const;

    std::shared_ptr<KeyLedger> ledger_ = std::make_shared<KeyLedger>();
    std::vector<std::shared_ptr<Token>> tokens_;
    ReaderEvents readers_;
};

// At exit, after the sources are gone: waits (bounded) for the modules to be finalized. false when
// one is still loaded because a call is stuck in it.
bool finish_token_modules(std::chrono::milliseconds timeout);

}  // namespace keychaind::token
