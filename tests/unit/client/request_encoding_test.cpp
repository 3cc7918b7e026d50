// Requests on the wire: key selectors, the documented frames, and the fields of each operation.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "fake_daemon.h"

using namespace keychain::test;
using keychaind::wire::MessageBuilder;
using keychaind::wire::Opcode;
using keychaind::wire::Tag;

namespace {

const std::string kId32 = "3f2a00112233445566778899aabbccddeeff00112233445566778899aabbccdd";
const std::string kId16 = "00112233445566778899AABBCCDDEEFF";
const std::vector<uint8_t> kEncodedDigest(32, 0xab);

struct SeenKey {
    std::optional<std::vector<uint8_t>> id;
    std::optional<std::string> label;
};

SeenKey key_of(const keychaind::wire::Message& m, Tag id_tag = Tag::KeyId, Tag label_tag = Tag::Label) {
    SeenKey s;
    if (auto v = m.get(id_tag)) s.id = vec(*v);
    s.label = m.get_string(label_tag);
    return s;
}

std::vector<uint8_t> from_hex(const std::string& h) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < h.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return out;
}

}  // namespace

TEST_CASE("key selectors: hex ids become KEY_ID, everything else a LABEL") {
    const std::vector<std::string> keys = {kId32,
                                           kId16,
                                           "label:web",
                                           "web-tls",
                                           kId32.substr(0, 63),
                                           "label:" + kId32,
                                           "label:label:x",
                                           "00112233445566778899aabbccddeefg"};
    std::vector<SeenKey> seen;
    FakeDaemon d({[&](FakeConnection& conn) {
        for (size_t i = 0; i < keys.size(); ++i) {
            auto r = conn.read();
            seen.push_back(key_of(r.msg));
            conn.send(reply_to(r.msg).bytes(Tag::Signature, bytes_of("sig")).finish());
        }
    }});
    auto c = connect_to(d);
    for (const auto& k : keys) {
        kc_buffer sig{};
        REQUIRE(kc_sign(c.get(), k.c_str(), KC_SIGN_ECDSA_SHA256, kEncodedDigest.data(), kEncodedDigest.size(), &sig) == KC_OK);
        kc_buffer_free(&sig);
    }
    d.stop();
    REQUIRE(d.errors().empty());
    CHECK(d.accepted() == 1);  // one socket for every call
    REQUIRE(seen.size() == keys.size());
    CHECK(seen[0].id == from_hex(kId32));
    CHECK(!seen[0].label);
    CHECK(seen[1].id == from_hex(kId16));
    CHECK(seen[2].label == "web");
    CHECK(!seen[2].id);
    CHECK(seen[3].label == "web-tls");
    CHECK(seen[4].label == kId32.substr(0, 63));
    CHECK(seen[5].label == kId32);
    CHECK(!seen[5].id);
    CHECK(seen[6].label == "label:x");
    CHECK(seen[7].label == "00112233445566778899aabbccddeefg");
}

TEST_CASE("an empty or missing key is refused before anything is sent") {
    FakeDaemon d({[](FakeConnection& conn) { conn.expect_eof(); }});
    {
        auto c = connect_to(d);
        kc_buffer sig{};
        CHECK(kc_sign(c.get(), "", KC_SIGN_ECDSA_SHA256, kEncodedDigest.data(), kEncodedDigest.size(), &sig) == KC_ERR_ARGUMENT);
        CHECK(kc_sign(c.get(), "label:", KC_SIGN_ECDSA_SHA256, kEncodedDigest.data(), kEncodedDigest.size(), &sig) ==
              KC_ERR_ARGUMENT);
        CHECK(kc_sign(c.get(), nullptr, KC_SIGN_ECDSA_SHA256, kEncodedDigest.data(), kEncodedDigest.size(), &sig) == KC_ERR_ARGUMENT);
        CHECK(kc_sign(c.get(), "web", KC_SIGN_ECDSA_SHA256, nullptr, 32, &sig) == KC_ERR_ARGUMENT);
        CHECK(kc_sign(c.get(), "web", 0, kEncodedDigest.data(), kEncodedDigest.size(), &sig) == KC_ERR_ARGUMENT);
        CHECK(sig.data == nullptr);
        const std::vector<uint8_t> big_context(4097, 1);
        kc_buffer key{}, wrapped{};
        CHECK(kc_generate_data_key(c.get(), "kek", big_context.data(), big_context.size(), &key, &wrapped) ==
              KC_ERR_ARGUMENT);
        CHECK(std::string(kc_last_error(c.get())).find("4096") != std::string::npos);
    }
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("STATUS is the documented frame and the documented reply decodes") {
    std::vector<uint8_t> request;
    FakeDaemon d({[&](FakeConnection& conn) {
        auto r = conn.read();
        request = r.raw_frame;
        std::vector<uint8_t> reply = {0x00, 0x00, 0x00, 0x42, 0x01, 0x81, 0x00, 0x00, 0x00, 0x07,
                                      0x00, 0x1d, 0x00, 0x00, 0x00, 0x05, 0x30, 0x2e, 0x31, 0x2e, 0x30,
                                      0x00, 0x1e, 0x00, 0x00, 0x00, 0x0c, 0x6d, 0x62, 0x65, 0x64, 0x74,
                                      0x6c, 0x73, 0x2d, 0x32, 0x2e, 0x32, 0x38,
                                      0x00, 0x1c, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02,
                                      0x00, 0x1f, 0x00, 0x00, 0x00, 0x01, 0x00,
                                      0x00, 0x20, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x05};
        keychaind::wire::put_be32(&reply[6], r.msg.request_id);
        conn.send_raw(reply);
    }});
    auto c = connect_to(d);
    kc_status_info s{};
    REQUIRE(kc_status(c.get(), &s) == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    REQUIRE(request.size() == 10);
    CHECK(std::vector<uint8_t>(request.begin(), request.begin() + 6) == std::vector<uint8_t>{0, 0, 0, 6, 1, 1});
    CHECK(keychaind::wire::read_be32(&request[6]) != 0);
    CHECK(std::string(s.version) == "0.1.0");
    CHECK(std::string(s.backend) == "mbedtls-2.28");
    CHECK(s.key_count == 2);
    CHECK(s.locked == 0);
    CHECK(s.uptime_seconds == 5);
}

TEST_CASE("UNWRAP carries WRAPPED then CONTEXT, and the data key comes back") {
    std::vector<uint8_t> wrapped = bytes_of("KCW1");
    wrapped.resize(80, 0x5a);
    const std::vector<uint8_t> data_key(32, 0x42);
    std::vector<uint8_t> request;
    bool second_has_context = true;
    FakeDaemon d({[&](FakeConnection& conn) {
        auto r = conn.read();
        request = r.raw_frame;
        conn.send(reply_to(r.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 1)).bytes(Tag::DataKey, data_key).finish());
        auto r2 = conn.read();
        second_has_context = r2.msg.has(Tag::Context);
        conn.send(reply_to(r2.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 1)).bytes(Tag::DataKey, data_key).finish());
    }});
    auto c = connect_to(d);
    kc_buffer out{};
    const std::string context = "db:users";
    REQUIRE(kc_unwrap(c.get(), wrapped.data(), wrapped.size(), reinterpret_cast<const uint8_t*>(context.data()),
                      context.size(), &out) == KC_OK);
    CHECK(vec(out) == data_key);
    kc_buffer_free(&out);
    CHECK(out.data == nullptr);
    CHECK(out.len == 0);
    REQUIRE(kc_unwrap(c.get(), wrapped.data(), wrapped.size(), nullptr, 0, &out) == KC_OK);
    kc_buffer_free(&out);
    d.stop();
    REQUIRE(d.errors().empty());
    // docs/protocol.md's example: 00 00 00 6a 01 08 <id> 00 07 00 00 00 50 KCW1… 00 05 00 00 00 08 db:users
    REQUIRE(request.size() == 4 + 0x6a);
    CHECK(std::vector<uint8_t>(request.begin(), request.begin() + 6) == std::vector<uint8_t>{0, 0, 0, 0x6a, 1, 8});
    CHECK(std::vector<uint8_t>(request.begin() + 10, request.begin() + 16) ==
          std::vector<uint8_t>{0, 7, 0, 0, 0, 0x50});
    CHECK(std::vector<uint8_t>(request.begin() + 96, request.begin() + 102) ==
          std::vector<uint8_t>{0, 5, 0, 0, 0, 8});
    CHECK(std::string(request.begin() + 102, request.end()) == "db:users");
    CHECK(!second_has_context);
}

TEST_CASE("GENERATE_DATA_KEY, WRAP and REWRAP send their KEK and return the wrapped form") {
    SeenKey gen_key, wrap_key, rewrap_target;
    std::vector<uint8_t> wrap_data_key, gen_context;
    bool rewrap_has_key_id = true;
    FakeDaemon d({[&](FakeConnection& conn) {
        auto g = conn.read();
        gen_key = key_of(g.msg);
        gen_context = vec(*g.msg.get(Tag::Context));
        conn.send(reply_to(g.msg)
                      .bytes(Tag::KeyId, std::vector<uint8_t>(16, 7))
                      .bytes(Tag::DataKey, std::vector<uint8_t>(32, 9))
                      .bytes(Tag::Wrapped, bytes_of("KCW1-wrapped"))
                      .finish());
        auto w = conn.read();
        wrap_key = key_of(w.msg);
        wrap_data_key = vec(*w.msg.get(Tag::DataKey));
        conn.send(reply_to(w.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 7)).bytes(Tag::Wrapped, bytes_of("W2")).finish());
        auto rw = conn.read();
        rewrap_target = key_of(rw.msg, Tag::TargetKeyId, Tag::TargetLabel);
        rewrap_has_key_id = rw.msg.has(Tag::KeyId) || rw.msg.has(Tag::Label);
        conn.send(reply_to(rw.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 8)).bytes(Tag::Wrapped, bytes_of("W3")).finish());
    }});
    auto c = connect_to(d);
    kc_buffer key{}, wrapped{};
    const uint8_t ctx[] = {1, 2, 3};
    REQUIRE(kc_generate_data_key(c.get(), "label:db", ctx, sizeof ctx, &key, &wrapped) == KC_OK);
    CHECK(vec(key) == std::vector<uint8_t>(32, 9));
    CHECK(text_of({wrapped.data, wrapped.len}) == "KCW1-wrapped");
    kc_buffer out{};
    REQUIRE(kc_wrap(c.get(), kId16.c_str(), key.data, key.len, nullptr, 0, &out) == KC_OK);
    CHECK(text_of({out.data, out.len}) == "W2");
    kc_buffer_free(&out);
    REQUIRE(kc_rewrap(c.get(), wrapped.data, wrapped.len, nullptr, 0, "db-2025", &out) == KC_OK);
    CHECK(text_of({out.data, out.len}) == "W3");
    kc_buffer_free(&out);
    kc_buffer_free(&key);
    kc_buffer_free(&wrapped);
    d.stop();
    REQUIRE(d.errors().empty());
    CHECK(gen_key.label == "db");
    CHECK(gen_context == std::vector<uint8_t>{1, 2, 3});
    CHECK(wrap_key.id == from_hex(kId16));
    CHECK(wrap_data_key == std::vector<uint8_t>(32, 9));
    CHECK(rewrap_target.label == "db-2025");
    CHECK(!rewrap_has_key_id);
}

TEST_CASE("LIST_KEYS asks for absent keys and decodes every KEY_INFO") {
    std::optional<uint8_t> include_absent;
    FakeDaemon d({[&](FakeConnection& conn) {
        auto r = conn.read();
        include_absent = r.msg.get_u8(Tag::IncludeAbsent);
        auto a = MessageBuilder::fields_only();
        a.bytes(Tag::KeyId, std::vector<uint8_t>(16, 0xaa))
            .str(Tag::Label, "db")
            .u8(Tag::Kind, 1)
            .u32(Tag::Bits, 256)
            .u8(Tag::Usages, 4)
            .str(Tag::Source, "file:/media/k/keys.4DKeyChain#0")
            .str(Tag::Source, "provided:uid=0")
            .u8(Tag::Tethered, 1)
            .u64(Tag::Expires, 1893456000)
            .u8(Tag::Present, 1);
        auto b = MessageBuilder::fields_only();
        b.bytes(Tag::KeyId, std::vector<uint8_t>(32, 0xbb))
            .str(Tag::Label, "web")
            .u8(Tag::Kind, 3)
            .u32(Tag::Bits, 256)
            .u8(Tag::Usages, 1)
            .u8(Tag::Tethered, 0)
            .u8(Tag::Present, 0);
        conn.send(reply_to(r.msg).nested(Tag::KeyInfo, a).nested(Tag::KeyInfo, b).finish());
    }});
    auto c = connect_to(d);
    kc_key_info* infos = nullptr;
    size_t n = 0;
    REQUIRE(kc_list_keys(c.get(), 1, &infos, &n) == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    CHECK(include_absent == 1);
    REQUIRE(n == 2);
    CHECK(std::string(infos[0].id) == std::string(32, 'a'));
    CHECK(std::string(infos[0].label) == "db");
    CHECK(infos[0].kind == KC_KIND_AES256);
    CHECK(infos[0].usages == KC_USAGE_WRAP);
    CHECK(std::string(infos[0].sources) == "file:/media/k/keys.4DKeyChain#0\nprovided:uid=0");
    CHECK(infos[0].tethered == 1);
    CHECK(infos[0].expires == 1893456000u);
    CHECK(infos[0].present == 1);
    CHECK(std::string(infos[1].id) == std::string(64, 'b'));
    CHECK(std::string(infos[1].sources).empty());
    CHECK(infos[1].expires == 0);
    CHECK(infos[1].present == 0);
    kc_key_info_free(infos, n);
}

TEST_CASE("GET_PUBLIC returns the public key and the certificate chain") {
    SeenKey seen;
    FakeDaemon d({[&](FakeConnection& conn) {
        auto r = conn.read();
        seen = key_of(r.msg);
        conn.send(reply_to(r.msg)
                      .bytes(Tag::KeyId, std::vector<uint8_t>(32, 0xcc))
                      .u8(Tag::Kind, 2)
                      .u32(Tag::Bits, 2048)
                      .bytes(Tag::PublicKey, bytes_of("spki"))
                      .bytes(Tag::Certificate, bytes_of("leaf"))
                      .bytes(Tag::Certificate, bytes_of("ca"))
                      .finish());
    }});
    auto c = connect_to(d);
    kc_public_info p{};
    REQUIRE(kc_get_public(c.get(), "web", &p) == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    CHECK(seen.label == "web");
    CHECK(std::string(p.id) == std::string(64, 'c'));
    CHECK(p.kind == KC_KIND_RSA);
    CHECK(p.bits == 2048);
    CHECK(text_of({p.public_key.data, p.public_key.len}) == "spki");
    REQUIRE(p.certificate_count == 2);
    CHECK(text_of({p.certificates[0].data, p.certificates[0].len}) == "leaf");
    CHECK(text_of({p.certificates[1].data, p.certificates[1].len}) == "ca");
    kc_public_info_clear(&p);
    CHECK(p.certificates == nullptr);
}

TEST_CASE("admin requests: PROVIDE, FORGET, LOCK and UNLOCK carry only what was given") {
    std::optional<std::string> passphrase, label, encoded, lock_pw, unlock_pw;
    std::optional<uint64_t> expires;
    bool forget_all_has_key = true;
    SeenKey forget_one;
    FakeDaemon d({[&](FakeConnection& conn) {
        auto p = conn.read();
        passphrase = p.msg.get_string(Tag::Passphrase);
        label = p.msg.get_string(Tag::Label);
        expires = p.msg.get_u64(Tag::Expires);
        conn.send(reply_to(p.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 0x11)).finish());
        auto e = conn.read();
        encoded = e.msg.get_string(Tag::EncodedKey);
        conn.send(reply_to(e.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 0x22)).finish());
        auto f1 = conn.read();
        forget_all_has_key = f1.msg.has(Tag::KeyId) || f1.msg.has(Tag::Label);
        conn.send(reply_to(f1.msg).u32(Tag::Count, 3).finish());
        auto f2 = conn.read();
        forget_one = key_of(f2.msg);
        conn.send(reply_to(f2.msg).u32(Tag::Count, 1).finish());
        auto l = conn.read();
        lock_pw = l.msg.get_string(Tag::Passphrase);
        conn.send(reply_to(l.msg).finish());
        auto u = conn.read();
        unlock_pw = u.msg.get_string(Tag::Passphrase);
        conn.send(reply_to(u.msg).finish());
    }});
    auto c = connect_to(d);
    char id[65];
    REQUIRE(kc_provide_passphrase(c.get(), "correct horse", "db", 1893456000, id) == KC_OK);
    CHECK(std::string(id) == std::string(32, '1'));
    REQUIRE(kc_provide_encoded_key(c.get(), std::string(64, 'A').c_str(), nullptr, 0, id) == KC_OK);
    CHECK(std::string(id) == "22222222222222222222222222222222");
    uint32_t count = 0;
    REQUIRE(kc_forget(c.get(), nullptr, &count) == KC_OK);
    CHECK(count == 3);
    REQUIRE(kc_forget(c.get(), "label:old", &count) == KC_OK);
    CHECK(count == 1);
    REQUIRE(kc_lock(c.get(), nullptr) == KC_OK);
    REQUIRE(kc_unlock(c.get(), "pw") == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    CHECK(passphrase == "correct horse");
    CHECK(label == "db");
    CHECK(expires == 1893456000u);
    CHECK(encoded == std::string(64, 'A'));
    CHECK(!forget_all_has_key);
    CHECK(forget_one.label == "old");
    CHECK(!lock_pw);
    CHECK(unlock_pw == "pw");
}

TEST_CASE("WAIT sends its timeout and returns the key's info") {
    std::optional<uint32_t> timeout;
    FakeDaemon d({[&](FakeConnection& conn) {
        auto r = conn.read();
        timeout = r.msg.get_u32(Tag::TimeoutMs);
        auto info = MessageBuilder::fields_only();
        info.bytes(Tag::KeyId, std::vector<uint8_t>(16, 0x33)).str(Tag::Label, "db").u8(Tag::Present, 1);
        conn.send(reply_to(r.msg).nested(Tag::KeyInfo, info).finish());
    }});
    auto c = connect_to(d);
    kc_key_info info{};
    REQUIRE(kc_wait(c.get(), "db", 1500, &info) == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    CHECK(timeout == 1500u);
    CHECK(std::string(info.label) == "db");
    CHECK(std::string(info.id) == std::string(32, '3'));
    kc_key_info_clear(&info);
    CHECK(info.label == nullptr);
}
