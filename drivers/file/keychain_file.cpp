// .4DKeyChain parsing: one SAX pass over the JSON, so secret strings go from the lexer's wiping
// buffer straight into SecretBytes and no JSON tree of them is ever built.
#include "file/keychain_file.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/data_key_text.h"
#include "core/error.h"
#include "core/log.h"
#include "protocol/message.h"

namespace keychaind::file {
namespace {

using SecureString = std::basic_string<char, std::char_traits<char>, WipingAllocator<char>>;
// Only its string type matters here: it is the lexer's token buffer.
using SecureJson = nlohmann::basic_json<std::map, std::vector, SecureString>;

enum class Property {
    Other,
    EncodedKey,
    PassPhrase,
    PrivateKey,
    Certificate,
    Name,
    Tethered,
    Expires
};

Property property_of(std::string_view name) {
    static const std::map<std::string_view, Property> kKnown = {
        {"encodedKey", Property::EncodedKey},
        {"passPhrase", Property::PassPhrase},
        {"privateKey", Property::PrivateKey},
        {"certificate", Property::Certificate},
        {"name", Property::Name},
        {"tethered", Property::Tethered},
        {"expires", Property::Expires},
    };
    const auto it = kKnown.find(name);
    return it == kKnown.end() ? Property::Other : it->second;
}

std::string_view property_name(Property p) {
    switch (p) {
        case Property::EncodedKey:
            return "encodedKey";
        case Property::PassPhrase:
            return "passPhrase";
        case Property::PrivateKey:
            return "privateKey";
        case Property::Certificate:
            return "certificate";
        case Property::Name:
            return "name";
        case Property::Tethered:
            return "tethered";
        case Property::Expires:
            return "expires";
        case Property::Other:
            break;
    }
    return "property";
}

enum class JsonType { Null, Boolean, Number, String, Object, Array };

std::string described(JsonType t) {
    switch (t) {
        case JsonType::Null:
            return "null";
        case JsonType::Boolean:
            return "a boolean";
        case JsonType::Number:
            return "a number";
        case JsonType::String:
            return "a string";
        case JsonType::Object:
            return "an object";
        case JsonType::Array:
            return "an array";
    }
    return "a value";
}

// What one entry said, before any of it is checked.
struct EntryText {
    size_t index = 0;
    std::string error;  // the first reason the entry is bad
    std::optional<SecretBytes> encoded_key, passphrase, private_key;
    std::optional<std::string> certificate, name, expires;
    std::optional<bool> tethered;
    std::set<std::string, std::less<>> properties;  // names seen so far, to catch duplicates

    void fail(std::string reason) {
        if (error.empty()) error = std::move(reason);
    }
};

// The SAX handler: tracks depth, cuts the file into entries and keeps the properties we know.
class EntryCollector {
public:
    using string_t = SecureString;

    bool null() { return scalar(JsonType::Null, nullptr, false); }
    bool boolean(bool v) { return scalar(JsonType::Boolean, nullptr, v); }
    bool number_integer(SecureJson::number_integer_t) {
        return scalar(JsonType::Number, nullptr, false);
    }
    bool number_unsigned(SecureJson::number_unsigned_t) {
        return scalar(JsonType::Number, nullptr, false);
    }
    // A template: nlohmann's binary readers, compiled in but never used here, pass a std::string.
    template <class String>
    bool number_float(SecureJson::number_float_t, const String&) {
        return scalar(JsonType::Number, nullptr, false);
    }
    bool string(string_t& s) { return scalar(JsonType::String, &s, false); }
    bool binary(SecureJson::binary_t&) { return true; }  // JSON text has no binary values
    bool start_object(size_t) { return open(JsonType::Object); }
    bool start_array(size_t) { return open(JsonType::Array); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }

    bool key(string_t& k) {
        if (!entry_ || depth_ != entry_depth_) return true;
        const std::string_view name(k.data(), k.size());
        if (!entry_->properties.emplace(name).second)
            entry_->fail("property \"" + log::escape(name, 64) + "\" appears twice");
        property_ = property_of(name);
        return true;
    }

    bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
        if (refusal_.empty()) {
            refusal_ = "is not valid JSON: " + json_error_reason(e);
            error_position_ = position;
        }
        return false;
    }

    const std::string& refusal() const { return refusal_; }
    std::optional<size_t> error_position() const { return error_position_; }
    bool top_is_array() const { return top_is_array_; }
    std::vector<EntryText>& entries() { return entries_; }

private:
    // nlohmann's message quotes the offending token after "; last read:", and that token may be
    // a secret: keep only the text before it.
    static std::string json_error_reason(const nlohmann::detail::exception& e) {
        if (e.id == 406) return "a number is out of range";
        std::string_view what = e.what();
        const size_t start = what.find("syntax error");
        if (start == std::string_view::npos) return "syntax error";
        what.remove_prefix(start);
        return std::string(what.substr(0, what.find("; last read:")));
    }

    bool scalar(JsonType t, const string_t* s, bool b) {
        if (depth_ == 0) {
            refusal_ = "is " + described(t) + ", need an object or an array";
            return false;
        }
        if (top_is_array_ && depth_ == 1) {
            bad_element(t);
        } else if (entry_ && depth_ == entry_depth_ && property_) {
            assign(*property_, t, s, b);
            property_.reset();
        }
        return true;
    }

    bool open(JsonType t) {
        if (depth_ == kMaxKeychainFileDepth) {
            refusal_ = "nests deeper than " + std::to_string(kMaxKeychainFileDepth) + " levels";
            return false;
        }
        const size_t parent = depth_++;
        if (parent == 0) {
            if (t == JsonType::Array)
                top_is_array_ = true;
            else
                begin_entry(0);
        } else if (top_is_array_ && parent == 1) {
            if (t == JsonType::Object)
                begin_entry(next_index_++);
            else
                bad_element(t);
        } else if (entry_ && parent == entry_depth_ && property_) {
            assign(*property_, t, nullptr, false);
            property_.reset();
        }
        return true;
    }

    bool close() {
        if (entry_ && depth_ == entry_depth_) {
            entries_.push_back(std::move(*entry_));
            entry_.reset();
        }
        --depth_;
        return true;
    }

    void begin_entry(size_t index) {
        entry_.emplace();
        entry_->index = index;
        entry_depth_ = depth_;
        property_.reset();
    }

    void bad_element(JsonType t) {
        EntryText e;
        e.index = next_index_++;
        e.fail("is " + described(t) + ", need an object");
        entries_.push_back(std::move(e));
    }

    void assign(Property p, JsonType t, const string_t* s, bool b) {
        if (p == Property::Other) return;  // unknown properties are 4D's or a later version's
        if (p == Property::Tethered) {
            if (t == JsonType::Boolean)
                entry_->tethered = b;
            else
                entry_->fail("tethered is " + described(t) + ", need true or false");
            return;
        }
        if (t != JsonType::String) {
            entry_->fail(std::string(property_name(p)) + " is " + described(t) + ", need a string");
            return;
        }
        switch (p) {
            case Property::EncodedKey:
                entry_->encoded_key.emplace(s->data(), s->size());
                break;
            case Property::PassPhrase:
                entry_->passphrase.emplace(s->data(), s->size());
                break;
            case Property::PrivateKey:
                entry_->private_key.emplace(s->data(), s->size());
                break;
            case Property::Certificate:
                entry_->certificate.emplace(s->data(), s->size());
                break;
            case Property::Name:
                entry_->name.emplace(s->data(), s->size());
                break;
            case Property::Expires:
                entry_->expires.emplace(s->data(), s->size());
                break;
            case Property::Tethered:
            case Property::Other:
                break;
        }
    }

    size_t depth_ = 0;  // containers open now
    bool top_is_array_ = false;
    size_t next_index_ = 0;
    std::optional<EntryText> entry_;    // the entry object being read
    size_t entry_depth_ = 0;            // depth_ inside that object
    std::optional<Property> property_;  // the property whose value comes next
    std::vector<EntryText> entries_;
    std::string refusal_;  // why the whole file is refused
    std::optional<size_t> error_position_;
};

// Out of line, so the parser lives in a frame below the caller's: its lexer keeps short strings
// (a short passphrase) in its own small-string buffer on the stack, and that buffer is not wiped.
[[gnu::noinline]] bool run_parser(std::string_view text, EntryCollector& collector) {
    return SecureJson::sax_parse(text.data(), text.data() + text.size(), &collector);
}

// Overwrites the stack region run_parser just used.
[[gnu::noinline]] void wipe_parser_stack() {
    unsigned char scratch[16 * 1024];
    secure_wipe(scratch, sizeof scratch);
}

std::string line_and_column(std::string_view text, size_t position) {
    // nlohmann counts the character it failed on as read.
    const size_t at = std::min(position > 0 ? position - 1 : 0, text.size());
    const std::string_view before = text.substr(0, at);
    const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
    const size_t newline = before.rfind('\n');
    const size_t column = at - (newline == std::string_view::npos ? 0 : newline + 1) + 1;
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

std::string default_label(std::string_view where, bool in_array, size_t index) {
    std::string_view base = where.substr(where.rfind('/') + 1);  // npos + 1 == 0
    const size_t dot = base.rfind('.');
    if (dot != std::string_view::npos && dot != 0) base = base.substr(0, dot);
    std::string label = wire::is_utf8(base) ? std::string(base) : log::escape(base);
    if (in_array) label += "#" + std::to_string(index);
    return label;
}

KeychainError entry_error(const std::string& reason) {
    return KeychainError(ErrorCode::BadRequest, reason);
}

std::shared_ptr<const Key> make_key(EntryText& e, std::string label) {
    std::vector<std::string_view> held;
    if (e.encoded_key) held.push_back("encodedKey");
    if (e.passphrase) held.push_back("passPhrase");
    if (e.private_key) held.push_back("privateKey");
    if (held.empty()) throw entry_error("has no encodedKey, passPhrase or privateKey");
    if (held.size() == 2)
        throw entry_error("has both " + std::string(held[0]) + " and " + std::string(held[1]) +
                          "; keep one");
    if (held.size() == 3) throw entry_error("has encodedKey, passPhrase and privateKey; keep one");
    if (e.certificate && !e.private_key) throw entry_error("has a certificate but no privateKey");

    if (e.name && !e.name->empty()) {
        if (e.name->find('\0') != std::string::npos) throw entry_error("name contains U+0000");
        if (e.name->size() > kMaxLabelBytes)
            throw entry_error("name is " + std::to_string(e.name->size()) + " bytes, over the " +
                              std::to_string(kMaxLabelBytes) + "-byte limit");
        label = *e.name;
    }
    std::optional<SystemTime> expires;
    if (e.expires) expires = parse_rfc3339(*e.expires);

    if (e.encoded_key) return Key::aes(decode_encoded_key(e.encoded_key->view()), label, expires);
    if (e.passphrase) {
        if (e.passphrase->view().find('\0') != std::string_view::npos)
            throw entry_error("passPhrase contains U+0000");
        return Key::aes(passphrase_key(e.passphrase->view()), label, expires);
    }
    std::vector<std::vector<uint8_t>> chain;
    if (e.certificate)
        chain = crypto_backend().parse_certificates(
            {reinterpret_cast<const uint8_t*>(e.certificate->data()), e.certificate->size()});
    return Key::identity(crypto_backend().parse_private_key(e.private_key->span()),
                         std::move(chain), label, expires);
}

}  // namespace

ParseResult parse_keychain_file(std::span<const uint8_t> content, std::string_view where) {
    const std::string shown = log::escape(where, 1024);
    auto refuse = [&](const std::string& why) {
        return KeychainError(ErrorCode::BadRequest, shown + " " + why);
    };
    if (content.size() > kMaxKeychainFileSize)
        throw refuse("is " + std::to_string(content.size()) + " bytes, over the 1 MiB limit");
    std::string_view text(reinterpret_cast<const char*>(content.data()), content.size());
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (!wire::is_utf8(text)) throw refuse("is not valid UTF-8");
    // JSON has no raw NUL anywhere, and nlohmann's lexer would take one for the end of the input.
    if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
        throw refuse("is not valid JSON: a NUL byte (" + line_and_column(text, nul + 1) + ")");

    EntryCollector collector;
    const bool parsed = run_parser(text, collector);
    wipe_parser_stack();
    if (!parsed) {
        std::string why = collector.refusal().empty() ? "is not valid JSON" : collector.refusal();
        if (const auto at = collector.error_position())
            why += " (" + line_and_column(text, *at) + ")";
        throw refuse(why);
    }

    ParseResult result;
    size_t unlisted = 0;
    auto problem = [&](size_t index, std::string_view reason) {
        if (result.problems.size() < kMaxProblemsPerFile)
            result.problems.push_back(shown + " entry " + std::to_string(index) + ": " +
                                      std::string(reason));
        else
            ++unlisted;
    };
    for (EntryText& e : collector.entries()) {
        if (!e.error.empty()) {
            problem(e.index, e.error);
            continue;
        }
        try {
            auto key = make_key(e, default_label(where, collector.top_is_array(), e.index));
            result.entries.push_back({e.index, std::move(key), e.tethered.value_or(false)});
        } catch (const KeychainError& ex) {
            problem(e.index, ex.what());
        }
        // Each entry's secret text goes as soon as its key is made.
        e.encoded_key.reset();
        e.passphrase.reset();
        e.private_key.reset();
    }
    if (unlisted != 0)
        result.problems.push_back(shown + ": " + std::to_string(unlisted) +
                                  " more problems not listed");
    return result;
}

SystemTime parse_rfc3339(std::string_view s) {
    using namespace std::chrono;
    auto bad = [&](std::string_view why) {
        return KeychainError(ErrorCode::BadRequest,
                             "expires \"" + log::escape(s, 64) + "\" " + std::string(why));
    };
    constexpr std::string_view kShape = "is not an RFC 3339 time like 2027-01-01T00:00:00Z";
    size_t pos = 0;
    auto number = [&](size_t width, int& out) {
        if (pos + width > s.size()) return false;
        out = 0;
        for (size_t i = 0; i < width; ++i) {
            const char c = s[pos + i];
            if (c < '0' || c > '9') return false;
            out = out * 10 + (c - '0');
        }
        pos += width;
        return true;
    };
    auto literal = [&](std::string_view choices) {
        if (pos >= s.size() || choices.find(s[pos]) == std::string_view::npos) return false;
        ++pos;
        return true;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!(number(4, y) && literal("-") && number(2, mo) && literal("-") && number(2, d) &&
          literal("Tt") && number(2, h) && literal(":") && number(2, mi) && literal(":") &&
          number(2, sec)))
        throw bad(kShape);
    int64_t nanos = 0;
    if (literal(".")) {
        size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (digits == 9) throw bad("has more than 9 fractional digits");
            nanos = nanos * 10 + (s[pos++] - '0');
            ++digits;
        }
        if (digits == 0) throw bad(kShape);
        for (; digits < 9; ++digits) nanos *= 10;
    }
    int offset_minutes = 0;
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const int sign = s[pos++] == '-' ? -1 : 1;
        int oh = 0, om = 0;
        if (!(number(2, oh) && literal(":") && number(2, om))) throw bad(kShape);
        if (oh > 23 || om > 59) throw bad("has a time zone offset out of range");
        offset_minutes = sign * (oh * 60 + om);
    } else if (!literal("Zz")) {
        throw bad("has no time zone (end it with Z or an offset like +02:00)");
    }
    if (pos != s.size()) throw bad(kShape);

    const year_month_day date{year{y}, month{static_cast<unsigned>(mo)},
                              day{static_cast<unsigned>(d)}};
    if (!date.ok()) throw bad("is not a calendar date");
    if (h > 23 || mi > 59 || sec > 60)
        throw bad("has a time of day out of range");  // 60: leap second
    const seconds since_epoch = sys_days(date).time_since_epoch() + hours(h) + minutes(mi) +
                                seconds(sec) - minutes(offset_minutes);
    static_assert(kLatestExpiry == sys_days(year{2200} / 1 / 1).time_since_epoch() - seconds(1));
    if (since_epoch > kLatestExpiry)
        throw bad("is after " + std::string(kLatestExpiryText) +
                  ", the latest expiry; leave expires out for a key that does not expire");
    if (since_epoch < seconds(0)) return SystemTime{};  // long past: dropped all the same
    return SystemTime(duration_cast<SystemTime::duration>(since_epoch + nanoseconds(nanos)));
}

}  // namespace keychaind::file
