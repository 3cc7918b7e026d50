// sign, decrypt.
#include <iostream>
#include <memory>

#include "core/crypto_backend.h"
#include "ctl.h"
#include "file_io.h"
#include "text_format.h"

namespace keychain::ctl {

namespace {

struct SignOptions {
    std::string key;
    std::string alg;
    std::string digest_hex;
    std::string digest_b64;
    std::string in;
    std::string data_file;
    std::string out;
};

// Ed25519 (RFC 8032, pure) hashes inside the signature: the daemon gets the message itself, so
// --data-file and --in both send the file's bytes unhashed, and there is no digest to give.
std::vector<uint8_t> message_of(const SignOptions& o) {
    if (!o.digest_hex.empty() || !o.digest_b64.empty())
        usage_error(o.alg + " signs the message itself, not a digest: give it with --data-file or --in");
    if (o.in.empty() == o.data_file.empty()) usage_error("give exactly one of --data-file, --in");
    return read_file(o.in.empty() ? o.data_file : o.in, keychaind::kMaxEd25519MessageBytes);
}

std::vector<uint8_t> digest_of(const SignOptions& o, keychaind::SignAlgorithm alg, size_t expected) {
    if (keychaind::sign_algorithm_signs_message(alg)) return message_of(o);
    const int given = !o.digest_hex.empty() + !o.digest_b64.empty() + !o.in.empty() + !o.data_file.empty();
    if (given != 1) usage_error("give exactly one of --digest-hex, --digest-b64, --in, --data-file");
    if (!o.digest_hex.empty()) {
        auto d = unhex(o.digest_hex);
        if (!d) usage_error("--digest-hex is not hexadecimal");
        return *d;
    }
    if (!o.digest_b64.empty()) {
        auto d = unbase64(o.digest_b64);
        if (!d) usage_error("--digest-b64 is not base64");
        return *d;
    }
    if (!o.in.empty()) return read_file(o.in);
    if (expected == 0)
        usage_error("rsa-pkcs1-raw signs a DigestInfo you built: give it with --in, --digest-hex or --digest-b64");
    return hash_file(o.data_file, expected);
}

void run_sign(const CommonOptions& common, const SignOptions& o) {
    const int alg = sign_algorithm(o.alg);
    const auto sign_alg = static_cast<keychaind::SignAlgorithm>(alg);
    const size_t expected = keychaind::sign_algorithm_digest_size(sign_alg);
    const auto digest = digest_of(o, sign_alg, expected);
    if (digest.empty()) usage_error(expected == 0 ? "the input is empty" : "the digest is empty");
    if (expected != 0 && digest.size() != expected)
        usage_error(o.alg + " signs a " + std::to_string(expected) + "-byte digest; got " +
                    std::to_string(digest.size()) + " bytes");
    auto client = connect(common);
    const auto sig = client.sign(o.key, alg, digest);
    const bool to_file = !o.out.empty() && o.out != "-";
    if (to_file) write_file(o.out, sig);
    if (common.json) {
        nlohmann::json j = {{"key", o.key}, {"algorithm", o.alg}};
        if (to_file)
            j["signature_file"] = o.out;
        else
            j["signature"] = base64(sig);
        std::cout << j.dump(2) << "\n";
    } else if (!to_file) {
        std::cout << base64(sig) << "\n";
    }
}

struct DecryptOptions {
    std::string key;
    std::string alg = "rsa-oaep-sha256";
    std::string in;
    std::string out;
};

void run_decrypt(const CommonOptions& common, const DecryptOptions& o) {
    const int alg = decrypt_algorithm(o.alg);
    if (common.json && o.out == "-") usage_error("--json with --out - would mix the plaintext into JSON; use a file");
    const auto ciphertext = read_file(o.in);
    auto client = connect(common);
    const auto plaintext = client.decrypt(o.key, alg, ciphertext);
    emit_secret(o.out, {plaintext.data(), plaintext.size()});
    if (common.json) std::cout << nlohmann::json({{"key", o.key}, {"plaintext_file", o.out}}).dump(2) << "\n";
}

}  // namespace

void add_crypto_commands(CLI::App& app, CommonOptions& common, Action& action) {
    auto so = std::make_shared<SignOptions>();
    auto* sign = app.add_subcommand("sign", "Sign a digest (ed25519: a message) with a key");
    sign->add_option("KEY", so->key, "the key")->required();
    sign->add_option("--alg", so->alg, "algorithm: " + sign_algorithm_names())->required()->type_name("NAME");
    sign->add_option("--digest-hex", so->digest_hex, "the digest in hex")->type_name("HEX");
    sign->add_option("--digest-b64", so->digest_b64, "the digest in base64")->type_name("B64");
    sign->add_option("--in", so->in, "a file holding the raw digest; ed25519: the message (- = stdin)")
        ->type_name("FILE");
    sign->add_option("--data-file", so->data_file,
                     "a file to hash with the algorithm's hash, then sign; ed25519: the message, "
                     "sent unhashed (at most 16384 bytes)")
        ->type_name("FILE");
    sign->add_option("--out", so->out, "write the raw signature to FILE (default: base64 on stdout)")
        ->type_name("FILE");
    add_common_options(sign, common);
    sign->callback([&, so] { action = [&, so] { run_sign(common, *so); }; });

    auto dopt = std::make_shared<DecryptOptions>();
    auto* decrypt = app.add_subcommand("decrypt", "Decrypt an RSA-OAEP ciphertext with a key");
    decrypt->add_option("KEY", dopt->key, "the key")->required();
    decrypt->add_option("--alg", dopt->alg, "rsa-oaep-sha256 (default) or rsa-oaep-sha1")->type_name("NAME");
    decrypt->add_option("--in", dopt->in, "the ciphertext file (- = stdin)")->required()->type_name("FILE");
    decrypt->add_option("--out", dopt->out, "a new file (mode 0600) for the plaintext; - = base64 on stdout")
        ->required()
        ->type_name("FILE");
    add_common_options(decrypt, common);
    decrypt->callback([&, dopt] { action = [&, dopt] { run_decrypt(common, *dopt); }; });
}

}  // namespace keychain::ctl
