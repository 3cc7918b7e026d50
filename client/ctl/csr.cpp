// csr: a PKCS#10 certificate request for a key held by keychaind, signed by the daemon (4D's
// GENERATE CERTIFICATE REQUEST); the private key never comes here.
#include <iostream>
#include <memory>

#include "ctl.h"
#include "file_io.h"
#include "text_format.h"
#include "x509_names.h"
#include "x509_writer.h"

namespace keychain::ctl {

namespace {

struct CsrOptions {
    std::string key;
    std::string subject;
    std::vector<std::string> sans;
    std::string out;
};

void run_csr(const CommonOptions& common, const CsrOptions& o) {
    const SubjectName subject(o.subject);
    const auto san_der = subject_alt_names_der(o.sans);
    auto client = connect(common);
    const auto pub = client.get_public(o.key);
    const SignatureAlgorithm alg = signature_algorithm_for(pub.kind);

    const auto info = request_info(subject, pub.spki, san_der);
    const auto hash = digest(alg.md, info);
    // By id: the request is signed by the very key whose public half it carries.
    const auto signature = client.sign(pub.id, alg.kc_algorithm, hash);
    check_signature(pub.spki, alg, hash, signature);
    const std::string text = pem("CERTIFICATE REQUEST", signed_structure(info, alg, signature));

    const bool to_file = !o.out.empty() && o.out != "-";
    if (to_file) write_file(o.out, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
    if (common.json) {
        nlohmann::json j = {{"key_id", pub.id}, {"subject", o.subject}, {"san", o.sans}};
        if (to_file)
            j["file"] = o.out;
        else
            j["csr_pem"] = text;
        std::cout << j.dump(2) << "\n";
    } else if (!to_file) {
        std::cout << text;
    }
}

}  // namespace

void add_csr_command(CLI::App& app, CommonOptions& common, Action& action) {
    auto o = std::make_shared<CsrOptions>();
    auto* sub = app.add_subcommand(
        "csr", "Write a PKCS#10 certificate request (PEM) signed by a key the daemon holds");
    sub->add_option("--key", o->key, "the key (RSA or EC)")->required()->type_name("KEY");
    sub->add_option("--subject", o->subject,
                    "the subject, e.g. \"CN=www.example.com,O=Example,C=FR\"")
        ->required()
        ->type_name("DN");
    sub->add_option("--san", o->sans,
                    "a subjectAltName: DNS:name, IP:address, email:address or URI:uri (repeatable)")
        ->type_name("TYPE:VALUE");
    sub->add_option("--out", o->out, "write the request to FILE (default: standard output)")
        ->type_name("FILE");
    add_common_options(sub, common);
    sub->callback([&, o] { action = [&, o] { run_csr(common, *o); }; });
}

}  // namespace keychain::ctl
