// provide, provide-pin, forget, lock, unlock (admin operations).
#include <cstring>
#include <iostream>
#include <memory>

#include "ctl.h"
#include "file_io.h"
#include "secret_input.h"
#include "text_format.h"

namespace keychain::ctl {

namespace {

const char* c_str(const keychaind::SecretBytes& s) { return reinterpret_cast<const char*>(s.data()); }

struct ProvideOptions {
    SecretSource passphrase;
    std::string encoded_key_file;
    std::string label;
};

void run_provide(const CommonOptions& common, ProvideOptions& o) {
    const int given = sources_given(o.passphrase) + !o.encoded_key_file.empty();
    if (given != 1)
        usage_error("give exactly one of --passphrase-file, --passphrase-stdin, --passphrase, --encoded-key-file");
    std::string id;
    if (!o.encoded_key_file.empty()) {
        keychaind::SecretBytes text = read_secret_file(o.encoded_key_file);
        size_t n = text.size();
        while (n > 0 && std::strchr(" \t\r\n", text.data()[n - 1]) != nullptr) --n;
        text.truncate(n);
        if (text.empty() || std::memchr(text.data(), 0, text.size()) != nullptr)
            usage_error("the encoded key file holds no key text");
        keychaind::SecretBytes key(text.size() + 1);  // zero-filled: NUL-terminated
        std::memcpy(key.data(), text.data(), text.size());
        auto client = connect(common);
        id = client.provide_encoded_key(c_str(key), o.label);
    } else {
        const auto pass = read_secret_text(o.passphrase, "passphrase");
        auto client = connect(common);
        id = client.provide_passphrase(c_str(pass), o.label);
    }
    if (common.json)
        std::cout << nlohmann::json({{"key_id", id}}).dump(2) << "\n";
    else
        std::cout << id << "\n";
}

void run_provide_pin(const CommonOptions& common, const std::string& token, SecretSource& pin_source) {
    if (token.empty()) usage_error("name the token (its [[pkcs11.token]] name, or a pkcs11: URI)");
    if (sources_given(pin_source) > 1) usage_error("give at most one of --pin-file, --pin-stdin");
    const auto pin = sources_given(pin_source) == 1
                         ? read_secret_text(pin_source, "PIN")
                         : read_secret_interactive("PIN for token " + token + ": ", "PIN");
    auto client = connect(common);
    const uint32_t added = client.provide_pin(token, c_str(pin));
    if (common.json)
        std::cout << nlohmann::json({{"token", token}, {"keys_added", added}}).dump(2) << "\n";
    else
        std::cout << "token " << printable(token) << ": " << added << (added == 1 ? " key added\n" : " keys added\n");
}

void run_forget(const CommonOptions& common, const std::string& key, bool all) {
    if (all == !key.empty()) usage_error("give a KEY or --all");
    auto client = connect(common);
    const uint32_t n = all ? client.forget_all() : client.forget(key);
    if (common.json)
        std::cout << nlohmann::json({{"forgotten", n}}).dump(2) << "\n";
    else
        std::cout << "forgot " << n << (n == 1 ? " key\n" : " keys\n");
}

void run_lock(const CommonOptions& common, bool lock, bool password_stdin) {
    keychaind::SecretBytes password;
    if (password_stdin) {
        SecretSource s;
        s.stdin_ = true;
        password = read_secret_text(s, "password");
    }
    auto client = connect(common);
    const char* pw = password.empty() ? nullptr : c_str(password);
    if (lock)
        client.lock(pw);
    else
        client.unlock(pw);
    if (common.json)
        std::cout << nlohmann::json({{"locked", lock}}).dump(2) << "\n";
    else
        std::cout << (lock ? "locked\n" : "unlocked\n");
}

}  // namespace

void add_admin_commands(CLI::App& app, CommonOptions& common, Action& action) {
    auto po = std::make_shared<ProvideOptions>();
    auto* provide = app.add_subcommand("provide", "Add a key from a passphrase or an encoded key (admin)");
    provide->add_option("--passphrase-file", po->passphrase.file, "read the passphrase from FILE")->type_name("FILE");
    provide->add_flag("--passphrase-stdin", po->passphrase.stdin_, "read the passphrase from standard input");
    provide->add_option("--passphrase", po->passphrase.text,
                        "the passphrase itself (visible to other users in ps; prefer the file or stdin)")
        ->type_name("TEXT");
    provide->add_option("--encoded-key-file", po->encoded_key_file,
                        "a file holding a 256-bit key as 64 hex digits or 44 base64 characters")
        ->type_name("FILE");
    provide->add_option("--label", po->label, "the key's label")->type_name("L");
    add_common_options(provide, common);
    provide->callback([&, po] { action = [&, po] { run_provide(common, *po); }; });

    auto pin_token = std::make_shared<std::string>();
    auto pin_source = std::make_shared<SecretSource>();
    auto* provide_pin = app.add_subcommand(
        "provide-pin", "Give a PKCS#11 token its PIN: the daemon logs in and loads its keys (admin)");
    provide_pin->add_option("TOKEN", *pin_token, "the token's [[pkcs11.token]] name, or a pkcs11: URI")->required();
    provide_pin->add_option("--pin-file", pin_source->file, "read the PIN from FILE")->type_name("FILE");
    provide_pin->add_flag("--pin-stdin", pin_source->stdin_,
                          "read the PIN from standard input (the default when it is not a terminal; on a "
                          "terminal the PIN is asked for without echo)");
    add_common_options(provide_pin, common);
    provide_pin->callback([&, pin_token, pin_source] {
        action = [&, pin_token, pin_source] { run_provide_pin(common, *pin_token, *pin_source); };
    });

    auto fkey = std::make_shared<std::string>();
    auto fall = std::make_shared<bool>(false);
    auto* forget = app.add_subcommand("forget", "Drop a key, or every key, from the keychain (admin)");
    forget->add_option("KEY", *fkey, "the key");
    forget->add_flag("--all", *fall, "forget every key");
    add_common_options(forget, common);
    forget->callback([&, fkey, fall] { action = [&, fkey, fall] { run_forget(common, *fkey, *fall); }; });

    for (const bool lock : {true, false}) {
        auto pw_stdin = std::make_shared<bool>(false);
        auto* sub = app.add_subcommand(lock ? "lock" : "unlock",
                                       lock ? "Lock keychaind: key operations answer LOCKED until unlock (admin)"
                                            : "Unlock keychaind (admin)");
        sub->add_flag("--password-stdin", *pw_stdin,
                      lock ? "read a password from standard input; unlock will need it"
                           : "read the password given to lock from standard input");
        add_common_options(sub, common);
        sub->callback([&, lock, pw_stdin] { action = [&, lock, pw_stdin] { run_lock(common, lock, *pw_stdin); }; });
    }
}

}  // namespace keychain::ctl
