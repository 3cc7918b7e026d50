// gen-datakey, wrap, unwrap, rewrap (envelope encryption, docs/envelope.md).
#include <iostream>
#include <memory>

#include "core/secret_bytes.h"
#include "ctl.h"
#include "file_io.h"
#include "text_format.h"

namespace keychain::ctl {

namespace {

constexpr std::string_view kMagic = "KCW1";
constexpr size_t kKekIdOffset = 4;
constexpr size_t kKekIdSize = 16;

struct ContextOptions {
    std::string text;
    std::string hex;
};

void add_context_options(CLI::App* sub, ContextOptions& c) {
    sub->add_option("--context", c.text, "envelope context (AAD) as text; must match at unwrap")->type_name("TEXT");
    sub->add_option("--context-hex", c.hex, "envelope context (AAD) in hex")->type_name("HEX");
}

std::vector<uint8_t> context_of(const ContextOptions& c) {
    if (!c.text.empty() && !c.hex.empty()) usage_error("give --context or --context-hex, not both");
    if (!c.hex.empty()) {
        auto v = unhex(c.hex);
        if (!v) usage_error("--context-hex is not hexadecimal");
        return *v;
    }
    return {c.text.begin(), c.text.end()};
}

bool is_kcw1(std::span<const uint8_t> b) {
    return b.size() >= kMagic.size() && std::equal(kMagic.begin(), kMagic.end(), b.begin());
}

// A wrapped key file: the raw KCW1 bytes, or their base64 (as `--out -` prints them).
std::vector<uint8_t> read_wrapped(const std::string& path) {
    auto raw = read_file(path);
    if (is_kcw1(raw)) return raw;
    const std::string_view text(reinterpret_cast<const char*>(raw.data()), raw.size());
    if (auto decoded = unbase64(text); decoded && is_kcw1(*decoded)) return *decoded;
    return raw;  // keychaind will say what is wrong with it
}

std::string kek_id_of(std::span<const uint8_t> wrapped) {
    if (!is_kcw1(wrapped) || wrapped.size() < kKekIdOffset + kKekIdSize) return "";
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string id;
    for (size_t i = kKekIdOffset; i < kKekIdOffset + kKekIdSize; ++i) {
        id += kDigits[wrapped[i] >> 4];
        id += kDigits[wrapped[i] & 15];
    }
    return id;
}

// Wrapped keys cannot be made again: a new file, or base64 on stdout for "-".
void emit_wrapped(const std::string& path, std::span<const uint8_t> wrapped) {
    if (path == "-")
        std::cout << base64(wrapped) << "\n";
    else
        write_new_file(path, wrapped);
}

void print_result(const CommonOptions& common, nlohmann::json j, const std::string& text) {
    if (common.json)
        std::cout << j.dump(2) << "\n";
    else if (!text.empty())
        std::cout << text << "\n";
}

struct GenerateOptions {
    std::string kek;
    ContextOptions context;
    std::string out_wrapped;
    std::string out_key;
};

void run_generate(const CommonOptions& common, const GenerateOptions& o) {
    if (o.out_wrapped == "-" && o.out_key == "-") usage_error("only one of --out-wrapped and --out-key can be -");
    if (common.json && (o.out_wrapped == "-" || o.out_key == "-"))
        usage_error("--json needs files for --out-wrapped and --out-key");
    const auto ctx = context_of(o.context);
    auto client = connect(common);
    const auto dk = client.generate_data_key(o.kek, ctx);
    emit_wrapped(o.out_wrapped, dk.wrapped);
    if (!o.out_key.empty()) emit_secret(o.out_key, {dk.key.data(), dk.key.size()});
    nlohmann::json j = {{"kek_id", kek_id_of(dk.wrapped)}, {"wrapped_file", o.out_wrapped}};
    if (!o.out_key.empty()) j["key_file"] = o.out_key;
    print_result(common, j, "");
}

struct WrapOptions {
    std::string kek;
    std::string key_in;
    ContextOptions context;
    std::string out;
};

void run_wrap(const CommonOptions& common, const WrapOptions& o) {
    if (common.json && o.out == "-") usage_error("--json needs a file for --out");
    const auto ctx = context_of(o.context);
    const keychaind::SecretBytes key = read_secret_file(o.key_in, 1024);
    if (key.empty()) usage_error("the data key file is empty");
    auto client = connect(common);
    const auto wrapped = client.wrap(o.kek, keychain::Bytes(key.data(), key.size()), ctx);
    emit_wrapped(o.out, wrapped);
    print_result(common, {{"kek_id", kek_id_of(wrapped)}, {"wrapped_file", o.out}}, "");
}

struct UnwrapOptions {
    std::string in;
    ContextOptions context;
    std::string out;
};

void run_unwrap(const CommonOptions& common, const UnwrapOptions& o) {
    if (common.json && o.out == "-") usage_error("--json with --out - would mix the data key into JSON; use a file");
    const auto ctx = context_of(o.context);
    const auto wrapped = read_wrapped(o.in);
    auto client = connect(common);
    const auto key = client.unwrap(wrapped, ctx);
    emit_secret(o.out, {key.data(), key.size()});
    print_result(common, {{"kek_id", kek_id_of(wrapped)}, {"key_file", o.out}}, "");
}

struct RewrapOptions {
    std::string in;
    std::string to;
    ContextOptions context;
    std::string out;
};

void run_rewrap(const CommonOptions& common, const RewrapOptions& o) {
    if (common.json && o.out == "-") usage_error("--json needs a file for --out");
    const auto ctx = context_of(o.context);
    const auto wrapped = read_wrapped(o.in);
    auto client = connect(common);
    const auto rewrapped = client.rewrap(wrapped, o.to, ctx);
    emit_wrapped(o.out, rewrapped);
    print_result(common, {{"kek_id", kek_id_of(rewrapped)}, {"wrapped_file", o.out}}, "");
}

}  // namespace

void add_envelope_commands(CLI::App& app, CommonOptions& common, Action& action) {
    auto go = std::make_shared<GenerateOptions>();
    auto* gen = app.add_subcommand("gen-datakey", "Make a new data key wrapped by KEK");
    gen->add_option("KEK", go->kek, "the key-encryption key")->required();
    add_context_options(gen, go->context);
    gen->add_option("--out-wrapped", go->out_wrapped, "a new file for the wrapped key; - = base64 on stdout")
        ->required()
        ->type_name("FILE");
    gen->add_option("--out-key", go->out_key, "a new file (mode 0600) for the data key; - = base64 on stdout")
        ->type_name("FILE");
    add_common_options(gen, common);
    gen->callback([&, go] { action = [&, go] { run_generate(common, *go); }; });

    auto wo = std::make_shared<WrapOptions>();
    auto* wrap = app.add_subcommand("wrap", "Wrap a data key of your own with KEK");
    wrap->add_option("KEK", wo->kek, "the key-encryption key")->required();
    wrap->add_option("--key-in", wo->key_in, "the raw data key, 1..1024 bytes (- = stdin)")
        ->required()
        ->type_name("FILE");
    add_context_options(wrap, wo->context);
    wrap->add_option("--out", wo->out, "a new file for the wrapped key; - = base64 on stdout")
        ->required()
        ->type_name("FILE");
    add_common_options(wrap, common);
    wrap->callback([&, wo] { action = [&, wo] { run_wrap(common, *wo); }; });

    auto uo = std::make_shared<UnwrapOptions>();
    auto* unwrap = app.add_subcommand("unwrap", "Unwrap a data key (its KEK is named inside it)");
    unwrap->add_option("--in", uo->in, "the wrapped key, raw or base64 (- = stdin)")->required()->type_name("FILE");
    add_context_options(unwrap, uo->context);
    unwrap->add_option("--out", uo->out, "a new file (mode 0600) for the data key; - = base64 on stdout")
        ->required()
        ->type_name("FILE");
    add_common_options(unwrap, common);
    unwrap->callback([&, uo] { action = [&, uo] { run_unwrap(common, *uo); }; });

    auto ro = std::make_shared<RewrapOptions>();
    auto* rewrap = app.add_subcommand("rewrap", "Wrap a data key again under another KEK (rotation)");
    rewrap->add_option("--in", ro->in, "the wrapped key, raw or base64 (- = stdin)")->required()->type_name("FILE");
    rewrap->add_option("--to", ro->to, "the new key-encryption key")->required()->type_name("KEK");
    add_context_options(rewrap, ro->context);
    rewrap->add_option("--out", ro->out, "a new file for the new wrapped key; - = base64 on stdout")
        ->required()
        ->type_name("FILE");
    add_common_options(rewrap, common);
    rewrap->callback([&, ro] { action = [&, ro] { run_rewrap(common, *ro); }; });
}

}  // namespace keychain::ctl
