// The worker threads and their queue.
#include "worker_pool.h"

namespace keychain::tls_server {

WorkerPool::WorkerPool(unsigned workers, size_t max_queued, Handler handler)
    : max_queued_(max_queued), handler_(std::move(handler)) {
    for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
}

bool WorkerPool::submit(ConnectionJob job) {
    {
        std::lock_guard lk(mu_);
        if (queue_.size() >= max_queued_) return false;
        queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
}

void WorkerPool::run() {
    for (;;) {
        ConnectionJob job;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, nothing left
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        handler_(job);
    }
}

}  // namespace keychain::tls_server
