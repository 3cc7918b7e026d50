// IdentitySource: PEM key/certificate pairs named in the config.
#include "file/identity_source.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include "core/key_id.h"
#include "core/keychain.h"
#include "file_test_support.h"
#include "temp_dir.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::file;
using keychaind::test::make_identity;
using keychaind::test::none_shares;
using keychaind::test::put_file;
using keychaind::test::TempDir;

TEST_CASE("IdentitySource adds a key and certificate pair under its configured name",
          "[file][identity]") {
    TempDir dir;
    const auto rsa = make_identity(KeyKind::Rsa);
    const auto ec = make_identity(KeyKind::EcP256);
    put_file(dir.file("rsa.key"), rsa.key_pem_legacy);
    put_file(dir.file("rsa.crt"), rsa.cert_pem);
    put_file(dir.file("ec.key"), ec.key_pem_pkcs8);
    Keychain kc;
    IdentitySource source(
        {{"web", dir.file("rsa.key"), dir.file("rsa.crt")}, {"ec", dir.file("ec.key"), ""}});
    const ScanReport r = source.scan(kc);
    CHECK(r.problems.empty());
    CHECK(r.keys_added == 2);
    CHECK(r.keys_seen == 2);

    const auto web = kc.get(KeySelector{std::nullopt, "web"});
    CHECK(web->id() == KeyId::for_public_key(rsa.spki_der));
    REQUIRE(web->certificates().size() == 1);
    CHECK(web->certificates()[0] == rsa.cert_der);
    const auto info = kc.info(KeySelector{std::nullopt, "web"});
    REQUIRE(info);
    CHECK(info->sources == std::vector<std::string>{"identity:web"});
    CHECK_FALSE(info->tethered);
    CHECK(kc.get(KeySelector{std::nullopt, "ec"})->certificates().empty());

    CHECK(source.scan(kc).keys_added == 0);
}

TEST_CASE("IdentitySource reports a missing, linked, mismatched or unparsable file by path",
          "[file][identity]") {
    TempDir dir;
    const auto a = make_identity(KeyKind::EcP256);
    const auto b = make_identity(KeyKind::EcP256);
    put_file(dir.file("a.key"), a.key_pem_legacy);
    put_file(dir.file("b.crt"), b.cert_pem);
    put_file(dir.file("junk.key"),
             "-----BEGIN PRIVATE KEY-----\nSECRETJUNKxyz\n-----END PRIVATE KEY-----\n");
    put_file(dir.file("big.key"), std::string(1024 * 1024 + 1, 'A'));
    REQUIRE(symlink(dir.file("a.key").c_str(), dir.file("link.key").c_str()) == 0);
    Keychain kc;
    IdentitySource source({{"missing", dir.file("nope.key"), ""},
                           {"link", dir.file("link.key"), ""},
                           {"mismatch", dir.file("a.key"), dir.file("b.crt")},
                           {"junk", dir.file("junk.key"), ""},
                           {"big", dir.file("big.key"), ""},
                           {"nodir", dir.file("none/x.key"), ""},
                           {"good", dir.file("a.key"), ""}});
    const ScanReport r = source.scan(kc);
    CHECK(r.keys_added == 1);
    REQUIRE(r.problems.size() == 6);
    CHECK(r.problems[0] == "identity \"missing\": " + dir.file("nope.key") + " does not exist");
    CHECK(r.problems[1] == "identity \"link\": " + dir.file("link.key") + " is a symbolic link");
    CHECK(r.problems[2] == "identity \"mismatch\": " + dir.file("b.crt") +
                               ": the first certificate does not belong to the private key");
    CHECK_THAT(r.problems[3], Catch::StartsWith("identity \"junk\": " + dir.file("junk.key") +
                                                ": private key does not parse"));
    CHECK(r.problems[4] ==
          "identity \"big\": " + dir.file("big.key") + " is 1048577 bytes, over the 1 MiB limit");
    CHECK_THAT(r.problems[5], Catch::StartsWith("identity \"nodir\": " + dir.file("none/x.key") +
                                                ": its directory cannot be opened"));
    CHECK(none_shares("SECRETJUNKxyz", r.problems));
    CHECK(kc.get(KeySelector{std::nullopt, "good"})->id() == KeyId::for_public_key(a.spki_der));
}

TEST_CASE("a symlink higher up the identity's path is followed", "[file][identity]") {
    TempDir dir;
    const auto ec = make_identity(KeyKind::EcP384);
    REQUIRE(mkdir(dir.file("real").c_str(), 0700) == 0);
    put_file(dir.file("real/ec.key"), ec.key_pem_legacy);
    REQUIRE(symlink(dir.file("real").c_str(), dir.file("alias").c_str()) == 0);
    Keychain kc;
    IdentitySource source({{"ec", dir.file("alias/ec.key"), ""}});
    const ScanReport r = source.scan(kc);
    CHECK(r.problems.empty());
    CHECK(r.keys_added == 1);
}
