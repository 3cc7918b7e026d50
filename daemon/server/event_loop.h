// EventLoop: epoll over fds, a thread-safe task queue (eventfd) and one-shot timers (timerfd).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/unique_fd.h"

namespace keychaind {

class EventLoop {
public:
    using Handler = std::function<void(uint32_t events)>;
    using Clock = std::chrono::steady_clock;

    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    void add(int fd, uint32_t events, Handler h);
    void modify(int fd, uint32_t events);
    void remove(int fd);
    // From any thread: run `task` on the loop thread.
    void post(std::function<void()> task);
    // Loop thread only.
    uint64_t add_timer(Clock::time_point when, std::function<void()> fn);
    void cancel_timer(uint64_t id);
    // Loop thread only: called after the loop has handled everything one wake-up brought.
    void set_after_batch(std::function<void()> fn) { after_batch_ = std::move(fn); }
    void run();
    void stop();  // any thread

private:
    struct Registration {
        uint32_t generation;
        std::shared_ptr<Handler> handler;
    };
    void drain_tasks();
    void fire_timers();
    void arm_timer();

    UniqueFd epoll_;
    UniqueFd wake_;   // eventfd
    UniqueFd timer_;  // timerfd
    std::unordered_map<int, Registration> handlers_;
    uint32_t next_generation_ = 1;
    std::mutex tasks_mu_;
    std::vector<std::function<void()>> tasks_;
    std::vector<std::function<void()>> running_tasks_;  // drain_tasks(), loop thread only
    std::multimap<Clock::time_point, std::pair<uint64_t, std::function<void()>>> timers_;
    uint64_t next_timer_ = 1;
    bool running_ = false;
    std::function<void()> after_batch_;
};

}  // namespace keychaind
