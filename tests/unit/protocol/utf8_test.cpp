// is_utf8: exactly the well-formed UTF-8 of RFC 3629.
#include <catch2/catch.hpp>

#include "protocol/message.h"

using keychaind::wire::is_utf8;
using namespace std::literals;

TEST_CASE("ASCII and well-formed 2-, 3- and 4-byte sequences are UTF-8", "[protocol][utf8]") {
    for (std::string_view s : {""sv, "plain ascii"sv, "nul\0inside"sv,
                               "\xc2\x80"sv,            // U+0080, smallest 2-byte
                               "\xc3\xa9"sv,            // U+00E9
                               "\xdf\xbf"sv,            // U+07FF, largest 2-byte
                               "\xe0\xa0\x80"sv,        // U+0800, smallest 3-byte
                               "\xe2\x82\xac"sv,        // U+20AC
                               "\xed\x9f\xbf"sv,        // U+D7FF, just below the surrogates
                               "\xee\x80\x80"sv,        // U+E000, just above them
                               "\xef\xbf\xbf"sv,        // U+FFFF
                               "\xf0\x90\x80\x80"sv,    // U+10000, smallest 4-byte
                               "\xf0\x9f\x94\x91"sv,    // U+1F511
                               "\xf4\x8f\xbf\xbf"sv,    // U+10FFFF, the last code point
                               "a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x94\x91!"sv}) {
        INFO(s.size() << " bytes");
        REQUIRE(is_utf8(s));
    }
}

TEST_CASE("overlong encodings are not UTF-8", "[protocol][utf8]") {
    for (std::string_view s : {"\xc0\x80"sv, "\xc0\xaf"sv, "\xc1\xbf"sv,  // 2-byte for < U+0080
                               "\xe0\x80\x80"sv, "\xe0\x9f\xbf"sv,         // 3-byte for < U+0800
                               "\xf0\x80\x80\x80"sv, "\xf0\x8f\xbf\xbf"sv  // 4-byte for < U+10000
         }) {
        INFO(s.size() << " bytes");
        REQUIRE_FALSE(is_utf8(s));
    }
}

TEST_CASE("UTF-16 surrogates are not UTF-8", "[protocol][utf8]") {
    for (std::string_view s : {"\xed\xa0\x80"sv, "\xed\xaf\xbf"sv, "\xed\xb0\x80"sv, "\xed\xbf\xbf"sv,
                               "\xed\xa0\xbd\xed\xb4\x91"sv}) {  // a CESU-8 pair
        REQUIRE_FALSE(is_utf8(s));
    }
}

TEST_CASE("code points past U+10FFFF and bytes F5..FF are not UTF-8", "[protocol][utf8]") {
    for (std::string_view s : {"\xf4\x90\x80\x80"sv, "\xf7\xbf\xbf\xbf"sv, "\xf5\x80\x80\x80"sv,
                               "\xf8\x88\x80\x80\x80"sv, "\xfc\x84\x80\x80\x80\x80"sv, "\xfe"sv,
                               "\xff"sv}) {
        REQUIRE_FALSE(is_utf8(s));
    }
}

TEST_CASE("truncated sequences and stray continuation bytes are not UTF-8", "[protocol][utf8]") {
    for (std::string_view s : {"\xc3"sv, "a\xc3"sv, "\xe2\x82"sv, "\xe2"sv, "\xf0\x9f\x94"sv,
                               "\xf0\x9f"sv, "\xf0"sv,
                               "\xc3" "a"sv,            // a lead byte followed by ASCII
                               "\xe2\x82" "a"sv, "\xf0\x9f\x94" "a"sv,
                               "\x80"sv, "\xbf"sv, "a\x80z"sv,
                               "\xc3\xa9\xa9"sv}) {     // one continuation too many
        INFO(s.size() << " bytes");
        REQUIRE_FALSE(is_utf8(s));
    }
}
