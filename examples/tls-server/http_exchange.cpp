// Parsing request heads and writing responses.
#include "http_exchange.h"

#include <algorithm>
#include <cctype>

namespace keychain::tls_server {

namespace {

const char* reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 301:
            return "Moved Permanently";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 431:
            return "Request Header Fields Too Large";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Error";
    }
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isupper(static_cast<unsigned char>(c));
    });
}

bool is_origin_form(std::string_view s) {
    return !s.empty() && s.front() == '/' && std::all_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
}

// A host name or IPv4 literal ("example.com", "10.0.0.1") or a bracketed IPv6 literal, with an
// optional port, which is dropped. Anything else (a header injection, a path) is refused.
std::optional<std::string> host_without_port(std::string_view value) {
    if (value.empty() || value.size() > 255) return std::nullopt;
    std::string_view host = value;
    std::string_view port;
    if (value.front() == '[') {
        const size_t close = value.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = value.substr(0, close + 1);
        const std::string_view inner = value.substr(1, close - 1);
        if (inner.empty() || !std::all_of(inner.begin(), inner.end(), [](char c) {
                return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
            }))
            return std::nullopt;
        const std::string_view rest = value.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
        }
    } else {
        const size_t colon = value.find(':');
        if (colon != std::string_view::npos) {
            host = value.substr(0, colon);
            port = value.substr(colon + 1);
        }
        if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
            }))
            return std::nullopt;
    }
    if (!std::all_of(port.begin(), port.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
        port.size() > 5)
        return std::nullopt;
    return std::string(host);
}

HttpResponse response(int status, std::string_view extra_headers, std::string_view body,
                      bool head_only) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    r += "Server: keychain-tls-server\r\n";
    r += "Content-Type: text/plain; charset=utf-8\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "Connection: close\r\n";
    r += extra_headers;
    r += "\r\n";
    if (!head_only) r += body;
    return {status, std::move(r)};
}

std::string hsts_header(const HttpsSettings& s) {
    return s.hsts ? "Strict-Transport-Security: max-age=" + std::to_string(s.hsts_max_age) + "\r\n"
                  : "";
}

}  // namespace

std::optional<HttpRequest> parse_request_head(std::string_view head, std::string& why) {
    const size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) {
        why = "no request line";
        return std::nullopt;
    }
    const std::string_view line = head.substr(0, eol);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        why = "malformed request line";
        return std::nullopt;
    }
    HttpRequest req;
    req.method = std::string(line.substr(0, sp1));
    req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    const std::string_view version = line.substr(sp2 + 1);
    if (!is_token(req.method) || !is_origin_form(req.target) ||
        (version != "HTTP/1.1" && version != "HTTP/1.0")) {
        why = "malformed request line";
        return std::nullopt;
    }

    bool host_seen = false;
    size_t pos = eol + 2;
    while (pos < head.size()) {
        const size_t end = head.find("\r\n", pos);
        const std::string_view field =
            head.substr(pos, end == std::string_view::npos ? head.npos : end - pos);
        pos = end == std::string_view::npos ? head.size() : end + 2;
        if (field.empty()) break;
        const size_t colon = field.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            why = "malformed header line";
            return std::nullopt;
        }
        if (!iequals(field.substr(0, colon), "host")) continue;
        if (host_seen) {
            why = "two Host headers";
            return std::nullopt;
        }
        host_seen = true;
        const auto host = host_without_port(trim(field.substr(colon + 1)));
        if (!host) {
            why = "malformed Host header";
            return std::nullopt;
        }
        req.host = *host;
    }
    return req;
}

HttpResponse error_response(int status, bool with_hsts, const HttpsSettings& settings) {
    const std::string body = std::to_string(status) + " " + reason_phrase(status) + "\n";
    return response(status, with_hsts ? hsts_header(settings) : "", body, false);
}

HttpResponse https_response(const HttpRequest& req, const HttpsSettings& s) {
    const bool head = req.method == "HEAD";
    if (req.method != "GET" && !head)
        return response(405, hsts_header(s) + "Allow: GET, HEAD\r\n", "405 Method Not Allowed\n",
                        false);
    if (req.target != "/" && req.target.rfind("/?", 0) != 0)
        return response(404, hsts_header(s), "404 Not Found\n", head);
    const std::string body =
        "Hello from keychain-tls-server.\nThis connection was authenticated by keychaind's " +
        s.key_description + "; its private key never left the daemon.\n";
    return response(200, hsts_header(s), body, head);
}

HttpResponse redirect_response(const HttpRequest& req, const RedirectSettings& s) {
    const std::string& host = req.host.empty() ? s.fallback_host : req.host;
    std::string location = "https://" + host;
    if (s.https_port != 443) location += ":" + std::to_string(s.https_port);
    location += req.target;
    const std::string body = "Moved to " + location + "\n";
    return response(301, "Location: " + location + "\r\n", body, req.method == "HEAD");
}

}  // namespace keychain::tls_server
