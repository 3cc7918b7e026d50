// A policy's rules as parsed: the peer, key and device matchers and their trace text.
// Private to policy/: the daemon codes against policy.h only.
#pragma once

#include <p11-kit/uri.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"

namespace keychaind::policy {

// --- operations (operation.cpp) ---

constexpr uint32_t op_bit(Operation op) { return uint32_t{1} << static_cast<unsigned>(op); }
inline constexpr uint32_t kAllOperations = (uint32_t{1} << kOperationCount) - 1;
uint32_t admin_operations();
uint32_t key_operations();
// "sign, list" for a set of operations, in enum order.
std::string operation_list(uint32_t ops);

// --- peers (peer_match.cpp) ---

// A user or group name resolved at load; `known` false when the system has no such name, and then
// it never matches.
struct NamedId {
    std::string name;
    uint32_t id = 0;
    bool known = false;
};

// Every field given must match; a field holds alternatives (any of them matches).
struct PeerMatch {
    bool any = false;
    std::optional<std::vector<uint32_t>> uids;
    std::optional<std::vector<uint32_t>> gids;
    std::optional<std::vector<NamedId>> users;
    std::optional<std::vector<NamedId>> groups;
    std::optional<std::vector<std::string>> exes;
    std::optional<std::vector<std::string>> units;
};

// `why`, when given, receives the reason: the fields that matched, or the first one that did not.
bool peer_matches(const PeerMatch& m, const Peer& peer, std::string* why);

// --- keys (key_match.cpp) ---

struct P11KitUriFree {
    void operator()(P11KitUri* u) const { p11_kit_uri_free(u); }
};
using UriPtr = std::unique_ptr<P11KitUri, P11KitUriFree>;

enum class SourceKind : uint8_t { File, Identity, Provided, Device, Token };
std::optional<SourceKind> source_kind_from_name(std::string_view name);
std::string_view source_kind_name(SourceKind kind);

struct DeviceSelector {
    std::optional<std::string> serial;   // exact
    std::optional<std::string> fs_uuid;  // any case
};

// Within one selector every field given must match.
struct KeySelector {
    std::optional<std::string> id;  // lower-case hex
    std::optional<std::string> label_glob;
    std::optional<SourceKind> source;
    std::optional<DeviceSelector> device;
    std::shared_ptr<P11KitUri> token;  // parsed for P11_KIT_URI_FOR_OBJECT_ON_TOKEN
    std::string token_text;
};

// A key matches when it matches one selector; `keys_any` matches every key.
struct KeyMatch {
    bool any = false;
    std::vector<KeySelector> selectors;
};

// `why`, when given, receives what matched ("key label \"web-1\" matches label \"web-*\"") or, on
// no match, what the key is and what the selectors wanted.
bool key_matches(const KeyMatch& m, const KeyFacts& key, std::string* why);
// Parses a pkcs11: URI as a token selector; nullptr and `error` set when it is not one.
std::shared_ptr<P11KitUri> parse_token_selector(const std::string& text, std::string& error);

// --- devices (device_match.cpp) ---

struct DeviceMatch {
    bool any = false;
    std::optional<std::string> vendor_id;  // lower-case
    std::optional<std::string> model_id;   // lower-case
    std::optional<std::string> serial;     // ID_SERIAL or ID_SERIAL_SHORT, exact
    std::optional<std::string> fs_uuid;    // any case
    std::optional<std::string> fs_label;   // exact
};

bool device_matches(const DeviceMatch& m, const DeviceFacts& device);

// --- trace text (trace_text.cpp) ---

// `text` in double quotes, control characters and non-ASCII bytes as \xNN, at most ~200 bytes.
std::string quoted(std::string_view text);
// `text` as is when it is plain (printable ASCII, no space, quote or comma), else quoted().
std::string shown(std::string_view text);
bool equal_ignoring_case(std::string_view a, std::string_view b);

// --- the rules ---

struct Policy::Rule {
    std::string name;
    size_t line = 0;
    PeerMatch peer;
    uint32_t operations = 0;  // op_bit set
    KeyMatch keys;            // ignored for operations that are not key operations
    bool allow = true;
    uint32_t rate = 0;
};

struct Policy::DeviceRule {
    std::string name;
    size_t line = 0;
    DeviceMatch match;
    bool tethered = false;
};

}  // namespace keychaind::policy
