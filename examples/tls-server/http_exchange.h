// One HTTP/1.1 request and its response: a bounded parse of the request head, and the answers
// of the HTTPS side (a page, with HSTS when enabled) and of the HTTP side (a 301 to HTTPS).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keychain::tls_server {

// The request head (request line and headers, up to the empty line) may be at most this long;
// a longer one gets 431 and the connection is closed.
inline constexpr size_t kMaxRequestHead = 16 * 1024;

struct HttpRequest {
    std::string method;
    std::string target;  // origin-form: starts with '/', printable ASCII
    std::string host;    // the Host header without its port; empty when absent
};

// nullopt when the head is malformed (`why` says how, for the log).
std::optional<HttpRequest> parse_request_head(std::string_view head, std::string& why);

struct HttpsSettings {
    bool hsts = false;
    uint64_t hsts_max_age = 63072000;  // two years
    std::string key_description;       // shown on the page
};

// A complete response; every one closes the connection ("Connection: close").
struct HttpResponse {
    int status = 0;
    std::string bytes;
};

HttpResponse error_response(int status, bool with_hsts, const HttpsSettings& settings);
HttpResponse https_response(const HttpRequest& request, const HttpsSettings& settings);

struct RedirectSettings {
    uint16_t https_port = 443;
    std::string fallback_host;  // when the request has no usable Host header
};
HttpResponse redirect_response(const HttpRequest& request, const RedirectSettings& settings);

}  // namespace keychain::tls_server
