// Server: the event loop's owner — accepts clients, frames requests, dispatches, replies.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "audit/audit_log.h"
#include "config/config.h"
#include "core/key_source.h"
#include "core/keychain.h"
#include "policy/policy.h"
#include "protocol/message.h"
#include "server/access.h"
#include "server/event_loop.h"
#include "server/listener.h"
#include "server/operations.h"
#include "server/peer_identity.h"
#include "server/ring_queue.h"
#include "server/worker_pool.h"

namespace keychaind {

using SourceFactory =
    std::function<std::vector<std::shared_ptr<KeySource>>(const Config&, const SourceHooks& hooks)>;

class Server {
public:
    // Blocks SIGTERM, SIGINT and SIGHUP for the calling thread: call before any other thread starts.
    static void block_signals();

    Server(Config cfg, SourceFactory make_sources, Keychain& keychain);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the socket, loads the policy and the keys the sources hold now. Throws on failure
    // (a policy file that cannot be read or parsed among them).
    void start();
    // Serves until SIGTERM or SIGINT; the keychain is emptied before it returns.
    void run();

private:
    struct Connection {
        uint64_t id = 0;
        UniqueFd fd;
        Caller caller;  // identity from connect; the policy view is redone after a reload
        wire::FrameReader reader;
        wire::Message request;  // the frame being handled; its field list is reused
        RingQueue<WipingBuffer> out{16};  // replies to write
        size_t out_offset = 0;  // bytes of out.front() already written
        size_t out_bytes = 0;
        uint32_t in_flight = 0;
        std::optional<uint32_t> subscription;  // SUBSCRIBE's request id
        bool closing = false;                  // flush what is queued, then close
        bool writing = false;                  // EPOLLOUT armed
        bool flush_queued = false;             // in flush_queue_
        std::optional<uint64_t> frame_timer;   // armed while a frame is begun but not complete
        explicit Connection(size_t max_frame) : reader(max_frame) {}
    };
    struct Waiter {
        uint64_t conn;
        uint32_t request_id;
        KeySelector selector;
        uint64_t timer;
    };

    void on_accept();
    void on_connection_event(uint64_t id, uint32_t events);
    void read_from(Connection& c);
    // `body` points into the connection's reader: valid until its next append.
    void handle_frame(Connection& c, std::span<const uint8_t> body);
    void dispatch(Connection& c, wire::Opcode op, std::span<const uint8_t> body, const wire::Message& msg);
    void send(Connection& c, WipingBuffer frame);
    void flush(Connection& c);
    void flush_queued();  // after each loop iteration: the connections send() queued
    void close_connection(uint64_t id);
    // A partial frame starts the clock (frame_timeout_ms); a complete one stops it.
    void time_partial_frame(Connection& c);
    struct Completion {  // a worker's reply on its way to the loop
        uint64_t conn = 0;
        WipingBuffer reply;
    };
    void post_completion(uint64_t conn, WipingBuffer reply);  // any thread
    void drain_completions();                                 // loop thread
    void complete(uint64_t conn, WipingBuffer reply);  // a worker's reply, on the loop thread
    Connection* find(uint64_t id);

    void start_wait(Connection& c, const wire::Message& m);
    void start_discover(Connection& c, uint32_t request_id);
    void on_key_event(const KeyEvent& ev);
    void arm_expiry();
    size_t scan_sources();
    size_t provide_pin(std::string_view token, SecretBytes pin);  // PROVIDE with PIN, on a worker
    void watch_sources();    // loop_ watches the EventSources among sources_
    void unwatch_sources();  // and no longer; stops them
    void on_signal();
    void reload();
    // The policy of the config's [daemon] policy (built-in without a file). Throws PolicyError.
    std::shared_ptr<const policy::Policy> load_policy(const Config& cfg) const;
    std::shared_ptr<const policy::Policy> current_policy() const;
    const Caller& caller_of(Connection& c);  // loop thread; refreshes the view after a reload
    SourceHooks source_hooks();
    void audit_key_event(const KeyEvent& ev);

    Config cfg_;
    SourceFactory make_sources_;
    Keychain& keychain_;
    DaemonState state_;
    std::unique_ptr<AuditLog> audit_;
    mutable std::mutex policy_mu_;
    std::shared_ptr<const policy::Policy> policy_;  // swapped whole at reload
    Access access_;
    Operations ops_;
    EventLoop loop_;
    std::unique_ptr<Listener> listener_;
    UniqueFd signal_fd_;
    std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
    std::unordered_map<uid_t, uint32_t> conns_per_uid_;
    uint64_t next_conn_id_ = 1;
    std::list<Waiter> waiters_;
    std::optional<uint64_t> expiry_timer_;
    std::mutex sources_mu_;
    std::vector<std::shared_ptr<KeySource>> sources_;
    std::vector<std::shared_ptr<EventSource>> watched_;  // loop thread only
    std::mutex scan_mu_;  // one scan at a time
    // Workers' replies: a record each, no std::function per reply; one loop task takes a batch.
    // Both vectors keep their capacity (swapped per batch). Declared before pool_: workers
    // finishing at shutdown still post here.
    std::mutex completions_mu_;
    std::vector<Completion> completions_;
    std::vector<Completion> completing_;  // drain_completions()'s batch, loop thread only
    // Last member: destroyed first, so no worker outlives what its jobs touch.
    std::unique_ptr<WorkerPool> pool_;
    std::vector<uint64_t> flush_queue_;  // connections with replies to write, loop thread only
    std::vector<uint64_t> flushing_;     // flush_queued()'s copy; both keep their capacity
};

}  // namespace keychaind
