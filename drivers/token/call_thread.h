// CallThread: a thread of the token driver that runs one token call at a time, so that the
// caller can stop waiting for a call that hangs without ever blocking on it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace keychaind::token {

using Clock = std::chrono::steady_clock;

class CallThread {
public:
    explicit CallThread(std::string name = "kc-token");
    // Lets the thread end once its queue is empty; never waits for it (it may be stuck in a module).
    ~CallThread();
    CallThread(const CallThread&) = delete;
    CallThread& operator=(const CallThread&) = delete;

    // Runs fn on the thread and waits for it until `deadline`. false when it has not finished by
    // then: the thread is stuck from now on and run() refuses it more work (post() still queues).
    // An exception fn throws is rethrown here. fn must own what it touches: it may outlive the
    // caller's wait, so it must never refer to the caller's stack.
    bool run(std::function<void()> fn, Clock::time_point deadline);
    // Queues fn (which must not throw) behind whatever runs now, without waiting.
    void post(std::function<void()> fn);
    bool stuck() const;

private:
    struct State {
        mutable std::mutex mu;
        std::condition_variable cv;
        std::deque<std::function<void()>> jobs;
        bool stopping = false;
        bool stuck = false;
        bool finished = false;  // the thread has left its loop
    };
    static void loop(std::shared_ptr<State> st);
    std::shared_ptr<State> state_;
};

// Runs fn on `thread` and returns its result; nullopt when the deadline passed first.
template <class R>
std::optional<R> run_for_result(CallThread& thread, std::function<R()> fn, Clock::time_point deadline) {
    auto out = std::make_shared<std::optional<R>>();
    if (!thread.run([out, fn = std::move(fn)] { *out = fn(); }, deadline)) return std::nullopt;
    return std::move(*out);
}

}  // namespace keychaind::token
