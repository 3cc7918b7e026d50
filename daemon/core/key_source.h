// KeySource: anything that feeds keys into the keychain (directories, devices, tokens).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/keychain.h"
#include "core/secret_bytes.h"
#include "policy/policy.h"

namespace keychaind {

// What a source reports for the audit log ("device-seen", "device-refused", "token-inserted",
// "token-removed") with its fields; never a secret.
struct SourceEvent {
    std::string event;
    std::vector<std::pair<std::string, std::string>> fields;
};

// What the server gives the sources it makes: where their audit events go, and the policy's
// device rules (which removable devices may carry keys, and whether their keys are tethered).
// Both may be called from any thread.
struct SourceHooks {
    std::function<void(const SourceEvent&)> audit;
    std::function<policy::DevicePermit(const policy::DeviceFacts&)> device_permit;
};

struct ScanReport {
    size_t keys_added = 0;     // new keychain entries
    size_t keys_seen = 0;      // valid keys found, new or not
    std::vector<std::string> problems;  // one line each, already logged; never a secret
};

class KeySource {
public:
    virtual ~KeySource() = default;
    virtual std::string_view name() const = 0;
    // Looks for keys now and adds them. Called at start and on DISCOVER, off the event loop.
    virtual ScanReport scan(Keychain& keychain) = 0;
};

// A key source that also reacts to a descriptor (a device monitor's socket). The server watches
// event_fd() on the loop thread while the source is in use and calls on_event() when it is
// readable; on_event() must not block (slow work goes to a thread of the source's own). stop()
// ends that work; it is called before the keychain is emptied and when a reload replaces the source.
class EventSource {
public:
    virtual ~EventSource() = default;
    virtual int event_fd() const = 0;
    virtual void on_event(Keychain& keychain) = 0;
    virtual void stop() = 0;
};

// A key source whose keys wait behind a PIN (PKCS#11 tokens): PROVIDE with PIN and TOKEN_URI
// reaches it. Called off the event loop.
class PinConsumer {
public:
    virtual ~PinConsumer() = default;
    // Whether `token` (a configured token's name, or a pkcs11: URI) names one of this source's tokens.
    virtual bool has_token(std::string_view token) const = 0;
    // Logs in to that token with `pin` and adds its keys; returns how many keys were added.
    // Throws KeychainError: DENIED for a wrong PIN, TOKEN_ERROR when the token fails or is absent.
    virtual size_t provide_pin(Keychain& keychain, std::string_view token, SecretBytes pin) = 0;
};

}  // namespace keychaind
