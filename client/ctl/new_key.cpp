// new-key: a new .4DKeyChain file (4D's "New data key"), made locally without the daemon.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <iostream>
#include <memory>
#include <string_view>

#include "core/crypto_backend.h"
#include "core/data_key_text.h"
#include "core/key_id.h"
#include "ctl.h"
#include "file_io.h"
#include "secret_input.h"

namespace keychain::ctl {

namespace {

constexpr std::string_view kExtension = ".4DKeyChain";

struct NewKeyOptions {
    SecretSource passphrase;
    std::string name;
    std::string out;
};

bool has_keychain_extension(const std::string& path) {
    if (path.size() < kExtension.size()) return false;
    const std::string_view tail(path.data() + path.size() - kExtension.size(), kExtension.size());
    for (size_t i = 0; i < tail.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(tail[i])) != std::tolower(static_cast<unsigned char>(kExtension[i])))
            return false;
    return true;
}

// Appends bytes to a secret buffer, growing it (the old buffer is wiped on release).
void append(keychaind::SecretBytes& buf, size_t& used, std::string_view s) {
    if (used + s.size() > buf.size()) {
        keychaind::SecretBytes bigger(std::max(buf.size() * 2, used + s.size()));
        if (used != 0) std::memcpy(bigger.data(), buf.data(), used);
        buf = std::move(bigger);
    }
    std::memcpy(buf.data() + used, s.data(), s.size());
    used += s.size();
}

void run_new_key(const CommonOptions& common, NewKeyOptions& o) {
    if (!has_keychain_extension(o.out))
        std::cerr << "keychainctl: note: keychaind reads only files named *.4DKeyChain\n";

    keychaind::SecretBytes key;
    if (sources_given(o.passphrase) > 1) usage_error("give --passphrase or --passphrase-stdin, not both");
    if (sources_given(o.passphrase) == 1) {
        const auto pass = read_secret_text(o.passphrase, "passphrase");
        key = keychaind::passphrase_key({reinterpret_cast<const char*>(pass.data()), pass.size() - 1});
    } else {
        key = keychaind::SecretBytes(32);
        keychaind::crypto_backend().random(key.span());
    }
    const keychaind::SecretBytes hex = keychaind::encode_key_hex(key);

    // The file is assembled in locked memory: the key never passes through a std::string. A
    // passphrase is not stored, only the key derived from it.
    keychaind::SecretBytes doc(256);
    size_t used = 0;
    append(doc, used, "{\"encodedKey\": \"");
    append(doc, used, hex.view());
    append(doc, used, "\"");
    if (!o.name.empty()) {
        append(doc, used, ", \"name\": ");
        append(doc, used, nlohmann::json(o.name).dump());
    }
    append(doc, used, "}\n");
    write_new_file(o.out, {doc.data(), used});

    const std::string id = keychaind::KeyId::for_symmetric_key(key.span()).hex();
    if (common.json)
        std::cout << nlohmann::json({{"file", o.out}, {"key_id", id}}).dump(2) << "\n";
    else
        std::cout << id << "\n";
}

}  // namespace

void add_new_key_command(CLI::App& app, CommonOptions& common, Action& action) {
    auto o = std::make_shared<NewKeyOptions>();
    auto* sub = app.add_subcommand("new-key", "Make a new .4DKeyChain file holding a 256-bit key (no daemon needed)");
    sub->add_option("--passphrase", o->passphrase.text,
                    "derive the key from this passphrase (SHA-256; visible in ps)")
        ->type_name("TEXT");
    sub->add_flag("--passphrase-stdin", o->passphrase.stdin_, "read the passphrase from standard input");
    sub->add_option("--name", o->name, "the key's label (the file's \"name\")")->type_name("N");
    sub->add_option("--out", o->out, "the new file, e.g. /media/stick/keys.4DKeyChain (mode 0600, never overwritten)")
        ->required()
        ->type_name("FILE");
    sub->add_flag("--json", common.json, "machine-readable output (JSON)");
    sub->callback([&, o] { action = [&, o] { run_new_key(common, *o); }; });
}

}  // namespace keychain::ctl
