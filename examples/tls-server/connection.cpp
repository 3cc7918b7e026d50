// One connection: read a bounded request head, answer, close; one log line either way.
#include "connection.h"

#include "byte_streams.h"
#include "daemon_signer.h"
#include "server_log.h"

namespace keychain::tls_server {

namespace {

std::string request_line(const std::string& head) {
    return printable(head.substr(0, head.find("\r\n")));
}

const char* head_failure(HeadStatus s) {
    switch (s) {
        case HeadStatus::Closed:
            return "closed before a complete request";
        case HeadStatus::TimedOut:
            return "timed out before a complete request";
        case HeadStatus::TooLarge:
            return "request head over the limit";
        default:
            return "read failed";
    }
}

// The response to a request head.
template <class Answer>
HttpResponse answer_head(HeadStatus status, const std::string& head, const Answer& answer,
                         const HttpsSettings& errors_with, bool hsts, std::string& note) {
    if (status == HeadStatus::TooLarge) return error_response(431, hsts, errors_with);
    if (status == HeadStatus::TimedOut) return error_response(408, hsts, errors_with);
    std::string why;
    const auto req = parse_request_head(head, why);
    if (!req) {
        note = why;
        return error_response(400, hsts, errors_with);
    }
    return answer(*req);
}

}  // namespace

void serve_https(SocketFd fd, const std::string& peer, const ConnectionSettings& settings) {
    const Deadline deadline(settings.timeout);
    DaemonSigner::clear_last_error();
    try {
        TlsStream tls(fd, deadline, settings.tls);
        const int rc = tls.handshake();
        if (rc != 0) {
            std::string line = "peer " + peer + ": TLS handshake failed: " + mbedtls_error_text(rc);
            if (!DaemonSigner::last_error().empty())
                line += "; " + printable(DaemonSigner::last_error());
            log_line(line);
            return;
        }
        const std::string session = tls.version() + " " + tls.cipher_suite();
        std::string head;
        const HeadStatus hs = read_request_head(tls, head, kMaxRequestHead);
        if (hs == HeadStatus::Closed || hs == HeadStatus::Failed) {
            log_line("peer " + peer + ": " + session + ": " + head_failure(hs));
            return;
        }
        std::string note;
        const HttpResponse response = answer_head(
            hs, head, [&](const HttpRequest& r) { return https_response(r, settings.https); },
            settings.https, settings.https.hsts, note);
        const IoStatus ws = tls.write_all(response.bytes);
        if (ws == IoStatus::Ok) {
            tls.close_notify();
            finish_connection(fd);
        }
        std::string line = "peer " + peer + ": " + session + " \"" + request_line(head) + "\" " +
                           std::to_string(response.status);
        if (!note.empty()) line += " (" + note + ")";
        if (hs != HeadStatus::Ok) line += std::string(" (") + head_failure(hs) + ")";
        if (ws != IoStatus::Ok)
            line +=
                " (the response could not be sent: " + mbedtls_error_text(tls.last_error()) + ")";
        log_line(line);
    } catch (const std::exception& e) {
        log_line("peer " + peer + ": " + e.what());
    }
}

void serve_http_redirect(SocketFd fd, const std::string& peer, const ConnectionSettings& settings) {
    const Deadline deadline(settings.timeout);
    try {
        PlainStream plain(fd, deadline);
        std::string head;
        const HeadStatus hs = read_request_head(plain, head, kMaxRequestHead);
        if (hs == HeadStatus::Closed || hs == HeadStatus::Failed) {
            log_line("peer " + peer + ": http: " + head_failure(hs));
            return;
        }
        std::string note;
        // HSTS is never sent over plain HTTP: browsers ignore it there (RFC 6797 section 7.2).
        const HttpResponse response = answer_head(
            hs, head, [&](const HttpRequest& r) { return redirect_response(r, settings.redirect); },
            settings.https, false, note);
        const IoStatus ws = plain.write_all(response.bytes);
        if (ws == IoStatus::Ok) finish_connection(fd);
        std::string line = "peer " + peer + ": http \"" + request_line(head) + "\" " +
                           std::to_string(response.status);
        if (!note.empty()) line += " (" + note + ")";
        if (ws != IoStatus::Ok) line += " (the response could not be sent)";
        log_line(line);
    } catch (const std::exception& e) {
        log_line("peer " + peer + ": " + e.what());
    }
}

}  // namespace keychain::tls_server
