// CallThread: a job queue on a detached thread, with a caller-side deadline.
#include "token/call_thread.h"

#include <pthread.h>

#include <chrono>
#include <thread>

#include "core/crypto_backend.h"

namespace keychaind::token {

CallThread::CallThread(std::string name) : state_(std::make_shared<State>()) {
    std::thread t([st = state_, name = std::move(name)] {
        pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
        loop(st);
        // The module's calls (SoftHSM2's, say) leave OpenSSL state on this thread.
        release_thread_crypto_state();
        {
            std::lock_guard lk(st->mu);
            st->finished = true;
        }
        st->cv.notify_all();
    });
    // The thread keeps its own reference to the state: it may outlive this object, stuck in a
    // module call, and ends by itself if the call ever returns.
    t.detach();
}

CallThread::~CallThread() {
    std::unique_lock lk(state_->mu);
    state_->stopping = true;
    state_->cv.notify_all();
    // A thread that is not stuck in a module ends at once; waiting for it means nothing of it
    // runs on while the process exits. A stuck one is left to end by itself, if ever.
    if (!state_->stuck)
        state_->cv.wait_for(lk, std::chrono::seconds(2), [&] { return state_->finished; });
}

void CallThread::loop(std::shared_ptr<State> st) {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lk(st->mu);
            st->cv.wait(lk, [&] { return st->stopping || !st->jobs.empty(); });
            if (st->jobs.empty()) return;
            job = std::move(st->jobs.front());
            st->jobs.pop_front();
        }
        job();
    }
}

void CallThread::post(std::function<void()> fn) {
    {
        std::lock_guard lk(state_->mu);
        state_->jobs.push_back(std::move(fn));
    }
    state_->cv.notify_all();
}

bool CallThread::run(std::function<void()> fn, Clock::time_point deadline) {
    struct Completion {
        bool finished = false;
        std::exception_ptr error;
    };
    auto done = std::make_shared<Completion>();
    {
        std::lock_guard lk(state_->mu);
        if (state_->stuck) return false;
        state_->jobs.push_back([st = state_, done, fn = std::move(fn)] {
            std::exception_ptr error;
            try {
                fn();
            } catch (...) {
                error = std::current_exception();
            }
            {
                std::lock_guard lk2(st->mu);
                done->error = error;
                done->finished = true;
            }
            st->cv.notify_all();
        });
    }
    state_->cv.notify_all();
    std::unique_lock lk(state_->mu);
    if (!state_->cv.wait_until(lk, deadline, [&] { return done->finished; })) {
        state_->stuck = true;
        return false;
    }
    lk.unlock();
    if (done->error) std::rethrow_exception(done->error);
    return true;
}

bool CallThread::stuck() const {
    std::lock_guard lk(state_->mu);
    return state_->stuck;
}

}  // namespace keychaind::token
