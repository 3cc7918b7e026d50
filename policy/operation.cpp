// Operations: their names in policy files and which of them are admin or key operations.
#include <array>

#include "policy/rule.h"

namespace keychaind::policy {
namespace {

constexpr std::array<std::string_view, kOperationCount> kNames = {
    "sign", "decrypt",   "unwrap",  "wrap",   "gen-datakey", "rewrap", "list",     "public",
    "wait", "subscribe", "provide", "forget", "lock",        "unlock", "discover",
};
static_assert(static_cast<size_t>(Operation::Discover) + 1 == kOperationCount);

}  // namespace

std::string_view operation_name(Operation op) {
    const auto i = static_cast<size_t>(op);
    return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

std::optional<Operation> operation_from_name(std::string_view name) {
    for (size_t i = 0; i < kNames.size(); ++i)
        if (kNames[i] == name) return static_cast<Operation>(i);
    return std::nullopt;
}

bool is_admin(Operation op) {
    switch (op) {
        case Operation::Provide:
        case Operation::Forget:
        case Operation::Lock:
        case Operation::Unlock:
        case Operation::Discover:
            return true;
        default:
            return false;
    }
}

bool is_key_operation(Operation op) {
    switch (op) {
        case Operation::Sign:
        case Operation::Decrypt:
        case Operation::Unwrap:
        case Operation::Wrap:
        case Operation::GenDataKey:
        case Operation::Rewrap:
        case Operation::Public:
        case Operation::Wait:
        case Operation::List:
        case Operation::Subscribe:
        case Operation::Forget:
            return true;
        default:
            return false;
    }
}

uint32_t admin_operations() {
    uint32_t bits = 0;
    for (size_t i = 0; i < kOperationCount; ++i)
        if (is_admin(static_cast<Operation>(i))) bits |= op_bit(static_cast<Operation>(i));
    return bits;
}

uint32_t key_operations() {
    uint32_t bits = 0;
    for (size_t i = 0; i < kOperationCount; ++i)
        if (is_key_operation(static_cast<Operation>(i))) bits |= op_bit(static_cast<Operation>(i));
    return bits;
}

std::string operation_list(uint32_t ops) {
    std::string out;
    for (size_t i = 0; i < kOperationCount; ++i) {
        if ((ops & op_bit(static_cast<Operation>(i))) == 0) continue;
        if (!out.empty()) out += ", ";
        out += kNames[i];
    }
    return out;
}

}  // namespace keychaind::policy
