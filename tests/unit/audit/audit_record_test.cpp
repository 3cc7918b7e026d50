// AuditRecord::json: one line of JSON whatever the field values hold.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "audit/audit_log.h"

using keychaind::AuditRecord;

namespace {

// No raw control byte, ESC, DEL, '%' or newline anywhere in the line.
bool record_line_is_inert(const std::string& line) {
    for (const char ch : line) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f || c == '%') return false;
    }
    return true;
}

keychaind::policy::Peer sample_peer() {
    keychaind::policy::Peer p;
    p.uid = 33;
    p.gid = 34;
    p.pid = 1234;
    p.exe = "/usr/sbin/nginx";
    p.unit = "nginx.service";
    return p;
}

}  // namespace

TEST_CASE("a record is one JSON object: ts, event, peer, then its fields") {
    AuditRecord r("decision");
    r.peer(sample_peer())
        .add("op", "sign")
        .add("result", "allow")
        .add("rule", "nginx")
        .add("count", 3LL)
        .add("tethered", true);
    const std::string line = r.json();
    CHECK(line.rfind("{\"ts\":\"", 0) == 0);
    CHECK(line.find('\n') == std::string::npos);
    const auto j = nlohmann::json::parse(line);
    CHECK(std::regex_match(j["ts"].get<std::string>(),
                           std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    CHECK(j["event"] == "decision");
    CHECK(j["peer"]["uid"] == 33);
    CHECK(j["peer"]["gid"] == 34);
    CHECK(j["peer"]["pid"] == 1234);
    CHECK(j["peer"]["exe"] == "/usr/sbin/nginx");
    CHECK(j["peer"]["unit"] == "nginx.service");
    CHECK(j["op"] == "sign");
    CHECK(j["result"] == "allow");
    CHECK(j["rule"] == "nginx");
    CHECK(j["count"] == 3);
    CHECK(j["tethered"] == true);
    // The order a reader expects: ts, event, peer first.
    CHECK(line.find("\"event\"") < line.find("\"peer\""));
    CHECK(line.find("\"peer\"") < line.find("\"op\""));
}

TEST_CASE("a record without a peer has no peer member") {
    const auto j =
        nlohmann::json::parse(AuditRecord("policy-loaded").add("source", "built-in").json());
    CHECK_FALSE(j.contains("peer"));
    CHECK(j["source"] == "built-in");
}

TEST_CASE("hostile field values come out escaped and round-trip") {
    const std::string newline = "evil\n{\"event\":\"forged\"}";
    const std::string ansi = "\x1b[31mred\x1b[0m";
    const std::string format = "%n%s%x";
    const std::string controls = std::string("a\0b\x01\x7f\r\t", 7);
    // U+009B, a one-byte CSI to some terminals.
    const std::string c1 = "csi\xc2\x9b[2J";
    const std::string utf8 = "cl\xc3\xa9 \xe2\x9c\x93";
    const std::string invalid = "bad\xff\xfe utf8 \xc3";
    const std::string backslash_quote = "a\\\"b";
    const std::string long_label(5000, 'L');

    auto peer = sample_peer();
    peer.exe = "/tmp/\x1b]0;pwned\x07%s\n";
    AuditRecord r("key-added");
    r.peer(peer)
        .add("newline", newline)
        .add("ansi", ansi)
        .add("format", format)
        .add("controls", controls)
        .add("c1", c1)
        .add("utf8", utf8)
        .add("invalid", invalid)
        .add("backslash_quote", backslash_quote)
        .add("label", long_label)
        .add("event", "forged")
        .add("%s", "key with a percent");
    const std::string line = r.json();
    INFO(line);
    CHECK(record_line_is_inert(line));
    CHECK(line.find("\\u0025") != std::string::npos);
    CHECK(line.find("\\u001b") != std::string::npos);

    const auto j = nlohmann::json::parse(line);
    CHECK(j["newline"] == newline);
    CHECK(j["ansi"] == ansi);
    CHECK(j["format"] == "%n%s%x");
    CHECK(j["controls"] == controls);
    CHECK(j["c1"] == c1);
    CHECK(j["utf8"] == utf8);
    CHECK(j["backslash_quote"] == backslash_quote);
    CHECK(j["invalid"] == "bad\xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd");  // U+FFFD each
    CHECK(j["peer"]["exe"] == peer.exe);
    CHECK(j["%s"] == "key with a percent");
    // A field cannot pass itself off as the event.
    CHECK(j["event"] == "key-added");
    CHECK(j["event_"] == "forged");

    const std::string label = j["label"];
    CHECK(label.size() < 1100);
    CHECK(label.rfind(std::string(1024, 'L'), 0) == 0);
    CHECK(label.substr(label.size() - 3) == "\xe2\x80\xa6");  // "…"
}

TEST_CASE("a long value is cut on a character boundary") {
    std::string value(1023, 'a');
    value += "\xe2\x9c\x93\xe2\x9c\x93";  // two 3-byte characters across the 1024-byte limit
    const auto j = nlohmann::json::parse(AuditRecord("x").add("v", value).json());
    CHECK(j["v"] == std::string(1023, 'a') + "\xe2\x80\xa6");
}
