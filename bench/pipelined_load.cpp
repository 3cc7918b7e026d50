// run_pipelined: each epoll thread owns its connections outright, so nothing is locked while
// requests fly; a reply immediately frees its slot for the next request on the same connection.
#include "pipelined_load.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bitset>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <stdexcept>
#include <thread>

#include "child_process.h"
#include "core/unique_fd.h"

namespace keychaind::bench {
namespace {

constexpr uint32_t kSlotBits = 7;
static_assert(kMaxDepth == 1 << kSlotBits);
constexpr size_t kMaxReply = 1024 * 1024;
constexpr size_t kReadChunk = 64 * 1024;

using Clock = std::chrono::steady_clock;

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

// The counted window opens after the warm-up and once as many replies have come back as requests
// were sent at the start: before that, latencies are those of the initial burst (64 connections x
// 64 requests of RSA take seconds to clear), not of the steady state.
struct Schedule {
    int64_t start_ns = 0;
    int64_t earliest_window_ns = 0;
    int64_t window_length_ns = 0;
    uint64_t fill_replies = 0;
    uint64_t quota_per_connection = 0;  // 0: by time
    std::atomic<uint64_t> replies{0};
    std::atomic<int64_t> window_start_ns{INT64_MAX};
    std::atomic<int64_t> window_end_ns{INT64_MAX};  // no new requests from here on
    std::atomic<int> threads_done{0};

    void on_reply(int64_t now) {
        if (quota_per_connection != 0 ||
            replies.fetch_add(1, std::memory_order_relaxed) + 1 != fill_replies)
            return;
        const int64_t open = std::max(now, earliest_window_ns);
        window_end_ns.store(open + window_length_ns);
        window_start_ns.store(open);
    }
    void check_progress(int64_t now) const {
        if (now - start_ns > kFillLimitNs &&
            window_start_ns.load(std::memory_order_relaxed) == INT64_MAX &&
            quota_per_connection == 0)
            throw std::runtime_error(
                "the requests sent at the start were not all answered within 120 s");
        if (now - window_end_ns.load(std::memory_order_relaxed) > kDrainLimitNs)
            throw std::runtime_error(
                "replies stopped coming: requests still in flight 60 s after the end");
    }
    static constexpr int64_t kFillLimitNs = 120'000'000'000;
    static constexpr int64_t kDrainLimitNs = 60'000'000'000;
};

struct Connection {
    UniqueFd fd;
    std::vector<uint8_t> in;
    size_t in_pos = 0;
    std::vector<uint8_t> out;
    size_t out_pos = 0;
    bool watching_out = false;
    std::array<int64_t, kMaxDepth> sent_ns{};
    std::bitset<kMaxDepth> outstanding;
    std::deque<uint32_t> order;  // slots in send order, for protocols without request ids
    uint32_t seq = 0;
    int in_flight = 0;
    uint64_t issued = 0;
};

struct ThreadResult {
    LatencySamples samples;
    uint64_t errors = 0;
    int64_t last_reply_ns = 0;
    std::exception_ptr failure;
};

class ClientThread {
  public:
    ClientThread(const StreamProtocol& p, Schedule& s,
                 std::vector<std::unique_ptr<Connection>> conns, int depth)
        : protocol_(p), schedule_(s), conns_(std::move(conns)), depth_(depth) {}

    void run(ThreadResult& result) {
        try {
            loop(result);
        } catch (...) {
            result.failure = std::current_exception();
        }
        schedule_.threads_done.fetch_add(1);
    }

  private:
    void loop(ThreadResult& r) {
        UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
        if (!ep) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
        for (auto& c : conns_) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = c.get();
            if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, c->fd.get(), &ev) != 0)
                throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
        }
        std::this_thread::sleep_until(
            Clock::time_point(std::chrono::nanoseconds(schedule_.start_ns)));
        int64_t now = now_ns();
        for (auto& c : conns_) {
            for (int slot = 0; slot < depth_; ++slot) issue(*c, static_cast<uint32_t>(slot), now);
            flush(ep.get(), *c);
        }
        std::array<epoll_event, 64> events;
        while (std::any_of(conns_.begin(), conns_.end(),
                           [](const auto& c) { return c->in_flight > 0; })) {
            const int n = epoll_wait(ep.get(), events.data(), static_cast<int>(events.size()), 100);
            if (n < 0 && errno != EINTR)
                throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
            now = now_ns();
            schedule_.check_progress(now);
            for (int i = 0; i < n; ++i) {
                auto* c = static_cast<Connection*>(events[static_cast<size_t>(i)].data.ptr);
                if (events[static_cast<size_t>(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    receive(*c, r, now);
                flush(ep.get(), *c);
            }
        }
    }

    bool may_issue(const Connection& c, int64_t now) const {
        if (schedule_.quota_per_connection != 0) return c.issued < schedule_.quota_per_connection;
        return now < schedule_.window_end_ns.load(std::memory_order_relaxed);
    }

    void issue(Connection& c, uint32_t slot, int64_t now) {
        if (!may_issue(c, now)) return;
        const uint32_t tag = (c.seq++ << kSlotBits) | slot;
        protocol_.append_request(tag, c.out);
        c.sent_ns[slot] = now;
        c.outstanding.set(slot);
        if (!protocol_.has_request_ids()) c.order.push_back(slot);
        ++c.in_flight;
        ++c.issued;
    }

    void receive(Connection& c, ThreadResult& r, int64_t now) {
        for (;;) {
            const size_t old = c.in.size();
            c.in.resize(old + kReadChunk);
            const ssize_t got = ::read(c.fd.get(), c.in.data() + old, kReadChunk);
            c.in.resize(old + static_cast<size_t>(std::max<ssize_t>(got, 0)));
            if (got > 0) continue;
            if (got == 0) throw std::runtime_error("the server closed a connection");
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            throw std::runtime_error(std::string("read: ") + std::strerror(errno));
        }
        while (c.in.size() - c.in_pos >= 4) {
            const uint8_t* p = c.in.data() + c.in_pos;
            const size_t len =
                (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
            if (len == 0 || len > kMaxReply)
                throw std::runtime_error("reply frame of " + std::to_string(len) + " bytes");
            if (c.in.size() - c.in_pos < 4 + len) break;
            on_reply(c, r, {p + 4, len}, now);
            c.in_pos += 4 + len;
        }
        if (c.in_pos == c.in.size()) {
            c.in.clear();
            c.in_pos = 0;
        } else if (c.in_pos > kReadChunk) {
            c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(c.in_pos));
            c.in_pos = 0;
        }
    }

    void on_reply(Connection& c, ThreadResult& r, std::span<const uint8_t> body, int64_t now) {
        bool ok = true;
        uint32_t slot;
        if (const auto tag = protocol_.reply_tag(body, ok)) {
            slot = *tag & (kMaxDepth - 1);
            if (!c.outstanding.test(slot))
                throw std::runtime_error("a reply for a request that was not sent");
        } else {
            if (c.order.empty()) throw std::runtime_error("a reply nobody asked for");
            slot = c.order.front();
            c.order.pop_front();
        }
        c.outstanding.reset(slot);
        --c.in_flight;
        schedule_.on_reply(now);
        const bool counted = schedule_.quota_per_connection != 0 ||
                             (now >= schedule_.window_start_ns.load(std::memory_order_relaxed) &&
                              now < schedule_.window_end_ns.load(std::memory_order_relaxed));
        if (counted) {
            r.samples.push_back(to_sample(now - c.sent_ns[slot]));
            if (!ok) ++r.errors;
            r.last_reply_ns = now;
        }
        issue(c, slot, now);
    }

    static void watch_out(int ep, Connection& c, bool on) {
        if (c.watching_out == on) return;
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.ptr = &c;
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c.fd.get(), &ev) != 0)
            throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
        c.watching_out = on;
    }

    static void flush(int ep, Connection& c) {
        while (c.out_pos < c.out.size()) {
            const ssize_t n =
                ::write(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos);
            if (n > 0) {
                c.out_pos += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                watch_out(ep, c, true);
                return;
            }
            throw std::runtime_error(std::string("write: ") + std::strerror(errno));
        }
        c.out.clear();
        c.out_pos = 0;
        watch_out(ep, c, false);
    }

    const StreamProtocol& protocol_;
    Schedule& schedule_;
    std::vector<std::unique_ptr<Connection>> conns_;
    int depth_;
};

}  // namespace

Summary run_pipelined(const StreamProtocol& protocol, const std::string& socket_path,
                      const LoadShape& shape, const Timing& timing, pid_t server_pid) {
    if (shape.depth < 1 || shape.depth > kMaxDepth)
        throw std::invalid_argument("depth must be 1..128");
    if (shape.connections < 1) throw std::invalid_argument("need a connection");
    const int threads = std::clamp(shape.client_threads, 1, shape.connections);

    std::vector<std::vector<std::unique_ptr<Connection>>> per_thread(static_cast<size_t>(threads));
    for (int i = 0; i < shape.connections; ++i) {
        auto c = std::make_unique<Connection>();
        c->fd.reset(connect_unix(socket_path, false));
        if (!c->fd)
            throw std::runtime_error("connect " + socket_path + ": " + std::strerror(errno));
        fcntl(c->fd.get(), F_SETFL, fcntl(c->fd.get(), F_GETFL) | O_NONBLOCK);
        per_thread[static_cast<size_t>(i % threads)].push_back(std::move(c));
    }

    Schedule s;
    s.start_ns = now_ns() + 20'000'000;  // every thread set up before the first request
    if (timing.total_ops != 0) {
        s.quota_per_connection = (timing.total_ops + static_cast<uint64_t>(shape.connections) - 1) /
                                 static_cast<uint64_t>(shape.connections);
        s.window_start_ns = s.start_ns;
        s.window_end_ns =
            s.start_ns + 3600'000'000'000;  // a hung daemon fails the run within the hour
    } else {
        s.earliest_window_ns = s.start_ns + static_cast<int64_t>(timing.warmup_s * 1e9);
        s.window_length_ns = static_cast<int64_t>(timing.seconds * 1e9);
        s.fill_replies =
            static_cast<uint64_t>(shape.connections) * static_cast<uint64_t>(shape.depth);
    }

    std::vector<ThreadResult> results(static_cast<size_t>(threads));
    std::vector<std::unique_ptr<ClientThread>> clients;
    std::vector<std::jthread> running;
    for (int t = 0; t < threads; ++t)
        clients.push_back(std::make_unique<ClientThread>(
            protocol, s, std::move(per_thread[static_cast<size_t>(t)]), shape.depth));
    CpuWindow cpu(server_pid);
    for (int t = 0; t < threads; ++t)
        running.emplace_back(
            [&, t] { clients[static_cast<size_t>(t)]->run(results[static_cast<size_t>(t)]); });
    if (timing.total_ops == 0) {
        while (s.window_start_ns.load() == INT64_MAX && s.threads_done.load() < threads)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (s.window_start_ns.load() != INT64_MAX) {
            std::this_thread::sleep_until(
                Clock::time_point(std::chrono::nanoseconds(s.window_start_ns.load())));
            cpu.start();
            std::this_thread::sleep_until(
                Clock::time_point(std::chrono::nanoseconds(s.window_end_ns.load())));
            cpu.stop();
        }
        running.clear();  // joins
    } else {
        std::this_thread::sleep_until(Clock::time_point(std::chrono::nanoseconds(s.start_ns)));
        cpu.start();
        running.clear();
        cpu.stop();
    }

    LatencySamples all;
    uint64_t errors = 0;
    int64_t last = 0;
    for (auto& r : results) {
        if (r.failure) std::rethrow_exception(r.failure);
        all.insert(all.end(), r.samples.begin(), r.samples.end());
        errors += r.errors;
        last = std::max(last, r.last_reply_ns);
    }
    const double seconds =
        timing.total_ops != 0 ? static_cast<double>(last - s.start_ns) / 1e9 : timing.seconds;
    Summary sum = summarize(all, seconds);
    sum.errors = errors;
    sum.client_cpu_pct = cpu.client_pct();
    sum.server_cpu_pct = cpu.server_pct();
    sum.other_cpu_pct = cpu.other_pct();
    return sum;
}

}  // namespace keychaind::bench
