// Fuzz target: the KCW1 wrapped-key parser (daemon/core/envelope.cpp) and unwrapping what it
// accepts; the input's bytes as a data key must also survive wrap, parse and unwrap unchanged.
#include <cstdlib>
#include <cstring>

#include "core/envelope.h"
#include "core/error.h"
#include "core/key.h"
#include "fuzz_input.h"

using namespace keychaind;

namespace {

// The dispatch target's KEK (bytes 0x00..0x1f), so the two corpora can share wrapped keys.
const Key& kek() {
    static const std::shared_ptr<const Key> k = [] {
        SecretBytes material(Key::kAesKeySize);
        for (size_t i = 0; i < material.size(); ++i) material.data()[i] = static_cast<uint8_t>(i);
        return Key::aes(std::move(material), "kek");
    }();
    return *k;
}

}  // namespace

// Input: a context length byte, the context, then the wrapped key.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::FuzzInput in(data, size);
    const auto context = in.bytes(in.u8());
    const auto wrapped = in.rest();
    if (const auto view = envelope::parse(wrapped)) {
        if (view->ciphertext.empty() || view->ciphertext.size() > envelope::kMaxDataKeySize) std::abort();
        try {
            (void)envelope::unwrap(*kek().aes_key(), *view, context);
        } catch (const KeychainError&) {
        }
    }
    if (wrapped.empty() || wrapped.size() > envelope::kMaxDataKeySize) return 0;
    const auto again = envelope::wrap(kek().id(), *kek().aes_key(), wrapped, context);
    const auto view = envelope::parse(again);
    if (!view || !(view->kek_id == kek().id())) std::abort();
    const SecretBytes back = envelope::unwrap(*kek().aes_key(), *view, context);
    if (back.size() != wrapped.size() || std::memcmp(back.data(), wrapped.data(), wrapped.size()) != 0)
        std::abort();
    return 0;
}
