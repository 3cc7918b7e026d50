// Server: accept, frame, dispatch to the loop or the workers, reply; WAIT, SUBSCRIBE, DISCOVER;
// expiry; SIGHUP reload and SIGTERM shutdown.
#include "server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "protocol/buffer_pool.h"

namespace keychaind {

using wire::MessageBuilder;
using wire::Opcode;
using wire::Tag;

namespace {

constexpr uint32_t kDefaultWaitMs = 30000;

uint8_t reply_opcode(Opcode op) {
    return static_cast<uint8_t>(static_cast<uint8_t>(op) | static_cast<uint8_t>(Opcode::ReplyBit));
}

sigset_t handled_signals() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGHUP);
    return s;
}

bool selector_matches(const KeySelector& sel, const KeyInfo& info) {
    return sel.id ? *sel.id == info.id : sel.label == info.label;
}

std::string describe(const KeyInfo& i) {
    std::string s = "id=" + i.id.hex() + " label=\"" + log::escape(i.label) + "\" kind=" +
                    std::string(key_kind_name(i.kind));
    for (const auto& src : i.sources) s += " source=\"" + log::escape(src) + "\"";
    return s;
}

}  // namespace

void Server::block_signals() {
    sigset_t s = handled_signals();
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

Server::Server(Config cfg, SourceFactory make_sources, Keychain& keychain)
    : cfg_(std::move(cfg)),
      make_sources_(std::move(make_sources)),
      keychain_(keychain),
      audit_(std::make_unique<AuditLog>(cfg_.audit)),
      access_(audit_.get()),
      ops_(keychain_, state_, access_) {
    sources_ = make_sources_(cfg_, source_hooks());
    pool_ = std::make_unique<WorkerPool>(cfg_.workers);
    completions_.reserve(64);
    completing_.reserve(64);
    ops_.set_pin_handler([this](std::string_view token, SecretBytes pin) { return provide_pin(token, std::move(pin)); });
    keychain_.set_listener([this](const KeyEvent& ev) {
        const std::string what = describe(ev.info);
        if (ev.type == KeyEventType::Added)
            log::info("key added: " + what);
        else
            log::info("key removed (" + ev.reason + "): " + what);
        audit_key_event(ev);
        loop_.post([this, ev] { on_key_event(ev); });
    });
}

Server::~Server() {
    keychain_.set_listener(nullptr);
    pool_.reset();
}

void Server::start() {
    {
        auto p = load_policy(cfg_);
        std::lock_guard lk(policy_mu_);
        policy_ = std::move(p);
    }
    listener_ = std::make_unique<Listener>(cfg_);
    const int lfd = listener_->fd();
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    loop_.add(lfd, EPOLLIN, [this](uint32_t) { on_accept(); });
    loop_.set_after_batch([this] { flush_queued(); });

    sigset_t s = handled_signals();
    signal_fd_.reset(signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd_) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
    loop_.add(signal_fd_.get(), EPOLLIN, [this](uint32_t) { on_signal(); });

    watch_sources();  // before the scan, so no device event falls between the two
    const size_t added = scan_sources();
    log::info("listening on " + listener_->path() + "; " + std::to_string(added) + " key(s) loaded");
    arm_expiry();
}

void Server::run() {
    loop_.run();
    log::info("shutting down");
    unwatch_sources();
    for (auto& [id, c] : conns_) loop_.remove(c->fd.get());
    conns_.clear();
    keychain_.forget(nullptr, "shutdown");
    listener_.reset();
}

// --- connections -------------------------------------------------------------------------

void Server::on_accept() {
    for (;;) {
        UniqueFd fd(accept4(listener_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log::warning(std::string("accept: ") + std::strerror(errno));
            return;
        }
        auto found = peer_identity_of(fd.get());
        if (!found) {
            log::warning("refused a connection: peer credentials unavailable");
            AuditRecord r("connection-refused");
            r.add("reason", "peer credentials unavailable");
            audit_->write(r);
            continue;
        }
        const auto peer = std::make_shared<const PeerIdentity>(std::move(*found));
        if (!peer->established())
            log::warning("connection from " + peer->text() + ": identity not established (" + peer->error +
                         "); every request is denied");
        const auto busy = [&](const std::string& why) {
            log::warning("refused a connection from " + peer->text() + ": " + why);
            AuditRecord r("busy");
            r.peer(peer->peer).add("quota", "connections").add("reason", why);
            audit_->write(r);
            const auto frame = error_reply(0, ErrorCode::Busy, why);
            ssize_t n = ::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)n;
        };
        if (conns_.size() >= cfg_.max_connections) {
            busy("too many connections (" + std::to_string(cfg_.max_connections) + ")");
            continue;
        }
        if (conns_per_uid_[peer->uid()] >= cfg_.max_connections_per_uid) {
            busy("too many connections for uid " + std::to_string(peer->uid()) + " (" +
                 std::to_string(cfg_.max_connections_per_uid) + ")");
            continue;
        }
        auto c = std::make_unique<Connection>(cfg_.max_frame_bytes);
        c->id = next_conn_id_++;
        c->caller.identity = peer;
        c->fd = std::move(fd);
        const uint64_t id = c->id;
        loop_.add(c->fd.get(), EPOLLIN | EPOLLRDHUP, [this, id](uint32_t ev) { on_connection_event(id, ev); });
        conns_per_uid_[peer->uid()]++;
        log::debug("connection " + std::to_string(id) + " from " + peer->text());
        conns_.emplace(id, std::move(c));
    }
}

Server::Connection* Server::find(uint64_t id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
}

void Server::on_connection_event(uint64_t id, uint32_t events) {
    Connection* c = find(id);
    if (!c) return;
    if (events & EPOLLOUT) {
        flush(*c);
        if (!(c = find(id))) return;
    }
    if (c->closing) {
        if (events & (EPOLLHUP | EPOLLERR)) close_connection(id);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_from(*c);
}

void Server::read_from(Connection& c) {
    const uint64_t id = c.id;
    uint8_t buf[16384];
    for (;;) {
        const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            close_connection(id);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        c.reader.append({buf, static_cast<size_t>(n)});
        for (;;) {
            std::optional<std::span<const uint8_t>> body;
            try {
                body = c.reader.next_view();
            } catch (const wire::DecodeError& e) {
                log::warning("connection " + std::to_string(id) + " (" + c.caller.identity->text() + "): " + e.what());
                send(c, error_reply(0, ErrorCode::BadRequest, e.what()));
                c.closing = true;
            }
            if (!body || c.closing) break;
            if (c.frame_timer) {
                loop_.cancel_timer(*c.frame_timer);
                c.frame_timer.reset();
            }
            handle_frame(c, *body);
            Connection* still = find(id);
            if (!still || still->closing) break;
        }
        Connection* still = find(id);
        if (!still) return;
        if (still->closing) {
            flush(*still);
            return;
        }
        // A short read drained the socket: skip the recv that would only say EAGAIN (epoll is
        // level-triggered, so data arriving meanwhile wakes the loop again).
        if (static_cast<size_t>(n) < sizeof buf) break;
    }
    if (Connection* still = find(id)) time_partial_frame(*still);
}

void Server::time_partial_frame(Connection& c) {
    if (c.reader.buffered() == 0 || c.frame_timer || c.closing) return;
    const uint64_t id = c.id;
    c.frame_timer = loop_.add_timer(
        EventLoop::Clock::now() + std::chrono::milliseconds(cfg_.frame_timeout_ms), [this, id] {
            Connection* stalled = find(id);
            if (!stalled) return;
            stalled->frame_timer.reset();  // fired: nothing to cancel any more
            log::warning("connection " + std::to_string(id) + " (" + stalled->caller.identity->text() +
                         ") sent part of a frame and nothing more for " +
                         std::to_string(cfg_.frame_timeout_ms) + " ms; closing it");
            close_connection(id);
        });
}

void Server::handle_frame(Connection& c, std::span<const uint8_t> body) {
    wire::Message& msg = c.request;
    try {
        wire::decode_into(msg, body);
    } catch (const wire::DecodeError& e) {
        // A frame whose own structure is broken: nothing after it can be trusted.
        const uint32_t rid = body.size() >= wire::kHeaderSize ? wire::read_be32(body.data() + 2) : 0;
        log::warning("connection " + std::to_string(c.id) + " (" + c.caller.identity->text() + "): " + e.what());
        send(c, error_reply(rid, ErrorCode::BadRequest, e.what()));
        c.closing = true;
        return;
    }
    const auto op = wire::request_opcode(msg.opcode);
    if (!op) {
        send(c, error_reply(msg.request_id, ErrorCode::BadRequest,
                            "unknown opcode " + std::to_string(msg.opcode)));
        return;
    }
    if (c.in_flight >= cfg_.max_in_flight && *op != Opcode::Subscribe) {
        AuditRecord r("busy");
        r.peer(c.caller.identity->peer)
            .add("quota", "in-flight")
            .add("op", policy::operation_name(policy_operation(*op)))
            .add("limit", static_cast<long long>(cfg_.max_in_flight));
        audit_->write(r);
        send(c, error_reply(msg.request_id, ErrorCode::Busy,
                            "too many requests in flight (" + std::to_string(cfg_.max_in_flight) + ")"));
        return;
    }
    try {
        ops_.check_request(*op, msg, caller_of(c));
        dispatch(c, *op, body, msg);
    } catch (const KeychainError& e) {
        if (e.code() == ErrorCode::Denied)
            log::warning("denied " + std::string(wire::opcode_name(*op)) + " to " + c.caller.identity->text() + ": " + e.what());
        send(c, error_reply(msg.request_id, e.code(), e.what()));
    } catch (const wire::DecodeError& e) {
        send(c, error_reply(msg.request_id, ErrorCode::BadRequest, e.what()));
    }
}

void Server::dispatch(Connection& c, Opcode op, std::span<const uint8_t> body, const wire::Message& msg) {
    switch (op) {
        case Opcode::Wait: return start_wait(c, msg);
        case Opcode::Discover: return start_discover(c, msg.request_id);
        case Opcode::Subscribe:
            c.subscription = msg.request_id;
            return send(c, MessageBuilder(reply_opcode(op), msg.request_id).finish());
        default: break;
    }
    if (!Operations::runs_on_worker(op)) return send(c, ops_.run(op, msg, c.caller));
    Keychain::Described found;
    if (ops_.runs_inline(op, msg, &found)) return send(c, ops_.run(op, msg, c.caller, &found));

    c.in_flight++;
    const uint64_t conn = c.id;
    // The worker gets its own copy of the frame (the reader's buffer moves on), in a pooled buffer.
    WipingBuffer copy = wire::take_buffer();
    copy.assign(body.begin(), body.end());
    pool_->submit(Operations::lane_of(op, msg), [this, conn, op, caller = c.caller, body = std::move(copy)]() mutable {
        WipingBuffer reply;
        // The views must point into this thread's copy; one Message per worker keeps its capacity.
        thread_local wire::Message m;
        try {
            wire::decode_into(m, body);
            reply = ops_.run(op, m, caller);
        } catch (const KeychainError& e) {
            reply = error_reply(m.request_id, e.code(), e.what());
        } catch (const wire::DecodeError& e) {
            reply = error_reply(m.request_id, ErrorCode::BadRequest, e.what());
        } catch (const std::exception& e) {
            log::error(std::string(wire::opcode_name(op)) + " failed: " + e.what());
            reply = error_reply(m.request_id, ErrorCode::Internal, "internal error; see the daemon's log");
        }
        wire::give_back(std::move(body));
        post_completion(conn, std::move(reply));
    });
}

void Server::post_completion(uint64_t conn, WipingBuffer reply) {
    bool first;
    {
        std::lock_guard lk(completions_mu_);
        completions_.push_back({conn, std::move(reply)});
        first = completions_.size() == 1;
    }
    // One loop task per batch of replies; capturing only `this`, it fits std::function's own
    // buffer. A drain that ran in between finds nothing to do, which is harmless.
    if (first) loop_.post([this] { drain_completions(); });
}

void Server::drain_completions() {
    {
        std::lock_guard lk(completions_mu_);
        completing_.swap(completions_);
    }
    struct Clear {  // a reply that throws must not leave the batch to run again
        std::vector<Completion>& v;
        ~Clear() { v.clear(); }
    } clear{completing_};
    for (Completion& done : completing_) complete(done.conn, std::move(done.reply));
}

void Server::complete(uint64_t conn, WipingBuffer reply) {
    Connection* c = find(conn);
    if (!c) return;  // the client left; the reply is wiped with the buffer
    c->in_flight--;
    send(*c, std::move(reply));
}

void Server::send(Connection& c, WipingBuffer frame) {
    c.out_bytes += frame.size();
    c.out.push_back(std::move(frame));
    if (c.out_bytes > cfg_.max_output_bytes) {
        log::warning("connection " + std::to_string(c.id) + " (" + c.caller.identity->text() +
                     ") does not read its replies; closing it");
        close_connection(c.id);
        return;
    }
    // Written once the loop has handled everything that woke it: replies that complete together
    // (a pipelining client's) leave in one sendmsg instead of one send each.
    if (!c.writing && !c.flush_queued) {
        c.flush_queued = true;
        flush_queue_.push_back(c.id);
    }
}

void Server::flush_queued() {
    flushing_.swap(flush_queue_);
    for (const uint64_t id : flushing_) {
        Connection* c = find(id);
        if (!c) continue;
        c->flush_queued = false;
        flush(*c);
    }
    flushing_.clear();
}

void Server::flush(Connection& c) {
    const uint64_t id = c.id;
    constexpr size_t kMaxIov = 64;
    iovec iov[kMaxIov];
    while (!c.out.empty()) {
        const size_t count = std::min(c.out.size(), kMaxIov);
        for (size_t i = 0; i < count; ++i) {
            const size_t skip = i == 0 ? c.out_offset : 0;
            iov[i].iov_base = c.out[i].data() + skip;
            iov[i].iov_len = c.out[i].size() - skip;
        }
        msghdr mh{};
        mh.msg_iov = iov;
        mh.msg_iovlen = count;
        const ssize_t n = ::sendmsg(c.fd.get(), &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            close_connection(id);
            return;
        }
        size_t left = static_cast<size_t>(n);
        while (left > 0) {
            const size_t rest = c.out.front().size() - c.out_offset;
            if (left < rest) {
                c.out_offset += left;
                break;
            }
            left -= rest;
            c.out_bytes -= c.out.front().size();
            wire::give_back(std::move(c.out.front()));  // wiped; its capacity serves a later reply
            c.out.pop_front();
            c.out_offset = 0;
        }
    }
    if (c.out.empty() && c.closing) {
        close_connection(id);
        return;
    }
    const bool want = !c.out.empty();
    if (want != c.writing || c.closing) {
        c.writing = want;
        // A closing connection is read no more: only its queued replies go out.
        loop_.modify(c.fd.get(), c.closing ? EPOLLOUT : EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u));
    }
}

void Server::close_connection(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Connection& c = *it->second;
    loop_.remove(c.fd.get());
    if (c.frame_timer) loop_.cancel_timer(*c.frame_timer);
    for (auto w = waiters_.begin(); w != waiters_.end();) {
        if (w->conn == id) {
            loop_.cancel_timer(w->timer);
            w = waiters_.erase(w);
        } else {
            ++w;
        }
    }
    const uid_t uid = c.caller.identity->uid();
    if (--conns_per_uid_[uid] == 0) conns_per_uid_.erase(uid);
    log::debug("connection " + std::to_string(id) + " closed");
    conns_.erase(it);
}

// --- WAIT, SUBSCRIBE events, DISCOVER ----------------------------------------------------

void Server::start_wait(Connection& c, const wire::Message& m) {
    const KeySelector sel = selector_from(m, Tag::KeyId, Tag::Label);
    const uint32_t timeout = m.get_u32(Tag::TimeoutMs).value_or(kDefaultWaitMs);
    if (timeout > cfg_.max_wait_ms)
        throw KeychainError(ErrorCode::BadRequest, "TIMEOUT_MS is over the limit of " +
                                                       std::to_string(cfg_.max_wait_ms));
    if (auto info = keychain_.info(sel)) {
        access_.check_key(c.caller, Opcode::Wait, *info);
        send(c, MessageBuilder(reply_opcode(Opcode::Wait), m.request_id)
                    .nested(Tag::KeyInfo, key_info_fields(*info))
                    .finish());
        return;
    }
    c.in_flight++;
    const uint64_t conn = c.id;
    const uint32_t rid = m.request_id;
    auto it = waiters_.insert(waiters_.end(), Waiter{conn, rid, sel, 0});
    it->timer = loop_.add_timer(EventLoop::Clock::now() + std::chrono::milliseconds(timeout), [this, it, sel] {
        const Waiter w = *it;
        waiters_.erase(it);
        complete(w.conn, error_reply(w.request_id, ErrorCode::Timeout, "no key " + sel.text() + " arrived in time"));
    });
}

void Server::on_key_event(const KeyEvent& ev) {
    if (ev.type == KeyEventType::Added) {
        for (auto it = waiters_.begin(); it != waiters_.end();) {
            if (!selector_matches(it->selector, ev.info)) {
                ++it;
                continue;
            }
            loop_.cancel_timer(it->timer);
            const Waiter w = *it;
            it = waiters_.erase(it);
            // Send the keychain's current view, which may hold more sources than the event did.
            const KeyInfo info = keychain_.info(KeySelector{ev.info.id, {}}).value_or(ev.info);
            Connection* waiting = find(w.conn);
            if (waiting == nullptr) continue;
            try {
                access_.check_key(caller_of(*waiting), Opcode::Wait, info);
            } catch (const KeychainError& e) {
                complete(w.conn, error_reply(w.request_id, e.code(), e.what()));
                continue;
            }
            complete(w.conn, MessageBuilder(reply_opcode(Opcode::Wait), w.request_id)
                                 .nested(Tag::KeyInfo, key_info_fields(info))
                                 .finish());
        }
        if (ev.info.expires) arm_expiry();
    }
    std::vector<uint64_t> subscribers;
    for (const auto& [id, c] : conns_)
        if (c->subscription) subscribers.push_back(id);
    for (uint64_t id : subscribers) {
        Connection* c = find(id);
        if (!c) continue;
        if (!access_.may_see(caller_of(*c), policy::Operation::Subscribe, ev.info)) continue;
        MessageBuilder b(static_cast<uint8_t>(Opcode::Event), *c->subscription);
        b.u8(Tag::EventType, static_cast<uint8_t>(ev.type)).nested(Tag::KeyInfo, key_info_fields(ev.info));
        if (!ev.reason.empty()) b.str(Tag::Reason, ev.reason);
        send(*c, std::move(b).finish());
    }
}

void Server::arm_expiry() {
    if (expiry_timer_) loop_.cancel_timer(*expiry_timer_);
    expiry_timer_.reset();
    const auto next = keychain_.next_expiry();
    if (!next) return;
    const auto delay = *next - std::chrono::system_clock::now();
    expiry_timer_ = loop_.add_timer(
        EventLoop::Clock::now() + std::chrono::duration_cast<EventLoop::Clock::duration>(delay) +
            std::chrono::milliseconds(1),
        [this] {
            expiry_timer_.reset();
            keychain_.drop_expired(std::chrono::system_clock::now());
            arm_expiry();
        });
}

void Server::watch_sources() {
    std::lock_guard lk(sources_mu_);
    for (const auto& s : sources_) {
        auto e = std::dynamic_pointer_cast<EventSource>(s);
        if (!e) continue;
        loop_.add(e->event_fd(), EPOLLIN, [this, e](uint32_t) { e->on_event(keychain_); });
        watched_.push_back(std::move(e));
    }
}

void Server::unwatch_sources() {
    for (const auto& e : watched_) {
        loop_.remove(e->event_fd());
        e->stop();
    }
    watched_.clear();
}

size_t Server::scan_sources() {
    std::lock_guard scan(scan_mu_);
    std::vector<std::shared_ptr<KeySource>> sources;
    {
        std::lock_guard lk(sources_mu_);
        sources = sources_;
    }
    size_t added = 0;
    for (const auto& s : sources) {
        try {
            added += s->scan(keychain_).keys_added;
        } catch (const std::exception& e) {
            log::error("key source " + std::string(s->name()) + " failed: " + e.what());
        }
    }
    return added;
}

size_t Server::provide_pin(std::string_view token, SecretBytes pin) {
    std::vector<std::shared_ptr<KeySource>> sources;
    {
        std::lock_guard lk(sources_mu_);
        sources = sources_;
    }
    for (const auto& s : sources) {
        auto p = std::dynamic_pointer_cast<PinConsumer>(s);
        if (p && p->has_token(token)) return p->provide_pin(keychain_, token, std::move(pin));
    }
    throw KeychainError(ErrorCode::BadRequest,
                        "no [[pkcs11.token]] is named \"" + log::escape(token) + "\" or matches that URI");
}

void Server::start_discover(Connection& c, uint32_t request_id) {
    c.in_flight++;
    const uint64_t conn = c.id;
    pool_->submit(Lane::Slow, [this, conn, request_id] {
        const size_t added = scan_sources();
        post_completion(conn, MessageBuilder(reply_opcode(Opcode::Discover), request_id)
                                  .u32(Tag::Count, static_cast<uint32_t>(added))
                                  .finish());
    });
}

// --- signals and reload ------------------------------------------------------------------

void Server::on_signal() {
    signalfd_siginfo si{};
    while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGHUP) {
            reload();
        } else {
            log::info(std::string("received ") + (si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM"));
            loop_.stop();
        }
    }
}

void Server::reload() {
    Config next;
    try {
        next = load_config(cfg_.path);
    } catch (const std::exception& e) {
        log::error(std::string("reload refused, keeping the running configuration: ") + e.what());
        return;
    }
    if (next.socket_path != cfg_.socket_path || next.socket_mode != cfg_.socket_mode ||
        next.socket_group != cfg_.socket_group || next.workers != cfg_.workers)
        log::warning("socket and worker settings change only at restart");
    next.socket_path = cfg_.socket_path;
    next.socket_mode = cfg_.socket_mode;
    next.socket_group = cfg_.socket_group;
    next.workers = cfg_.workers;
    next.allow_unlocked_memory = cfg_.allow_unlocked_memory;
    log::set_level(next.log_level);
    if (next.audit.target != cfg_.audit.target || next.audit.file != cfg_.audit.file)
        log::warning("audit settings change only at restart");
    next.audit = cfg_.audit;
    audit_->reopen();  // log rotation
    try {
        auto p = load_policy(next);
        std::lock_guard lk(policy_mu_);
        policy_ = std::move(p);
    } catch (const std::exception& e) {
        log::error(std::string("policy reload refused, keeping the running policy: ") + e.what());
        AuditRecord r("policy-rejected");
        r.add("reason", e.what());
        audit_->write(r);
    }
    for (auto& [id, c] : conns_) c->reader.set_max_frame(next.max_frame_bytes);
    unwatch_sources();
    auto sources = make_sources_(next, source_hooks());
    {
        std::lock_guard lk(sources_mu_);
        sources_ = std::move(sources);
    }
    watch_sources();
    cfg_ = std::move(next);
    log::info("configuration reloaded from " + cfg_.path);
    pool_->submit(Lane::Slow, [this] { scan_sources(); });
}

// --- policy and audit --------------------------------------------------------------------

std::shared_ptr<const policy::Policy> Server::load_policy(const Config& cfg) const {
    std::shared_ptr<const policy::Policy> p;
    if (!cfg.uses_policy_file()) {
        p = policy::Policy::builtin(geteuid());
        log::info("policy: built-in (no policy file" +
                  (cfg.policy_path.empty() ? std::string() : " at " + cfg.policy_path) +
                  "): root and uid " + std::to_string(geteuid()) +
                  " may do everything, any peer that can open the socket every non-admin operation");
    } else {
        p = policy::Policy::load(cfg.policy_path);
        for (const auto& w : p->warnings()) log::warning("policy: " + w);
        log::info("policy loaded from " + cfg.policy_path);
    }
    AuditRecord r("policy-loaded");
    r.add("source", p->source());
    audit_->write(r);
    return p;
}

std::shared_ptr<const policy::Policy> Server::current_policy() const {
    std::lock_guard lk(policy_mu_);
    return policy_;
}

const Caller& Server::caller_of(Connection& c) {
    auto p = current_policy();
    if (c.caller.policy != p) {
        c.caller.view = std::make_shared<const policy::Policy::PeerView>(
            policy::Policy::view_for(p, c.caller.identity->peer));
        c.caller.policy = std::move(p);
    }
    return c.caller;
}

SourceHooks Server::source_hooks() {
    SourceHooks h;
    AuditLog* audit = audit_.get();
    h.audit = [audit](const SourceEvent& ev) {
        AuditRecord r(ev.event);
        for (const auto& [k, v] : ev.fields) r.add(k, v);
        audit->write(r);
    };
    h.device_permit = [this](const policy::DeviceFacts& d) {
        const auto p = current_policy();
        if (!p) return policy::DevicePermit{false, false, "no policy loaded yet"};
        return p->device_permit(d);
    };
    return h;
}

void Server::audit_key_event(const KeyEvent& ev) {
    AuditRecord r(ev.type == KeyEventType::Added ? "key-added" : "key-removed");
    r.add("key_id", ev.info.id.hex()).add("label", ev.info.label).add("kind", key_kind_name(ev.info.kind));
    std::string sources;
    for (const auto& src : ev.info.sources) sources += (sources.empty() ? "" : " ") + src;
    r.add("sources", sources);
    r.add("tethered", ev.info.tethered);
    if (ev.type == KeyEventType::Removed) r.add("reason", ev.reason);
    audit_->write(r);
}

}  // namespace keychaind
