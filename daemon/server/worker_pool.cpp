// WorkerPool: a FIFO of jobs per lane, each served by its own threads.
#include "server/worker_pool.h"

#include <algorithm>

#include "core/log.h"

namespace keychaind {

WorkerPool::WorkerPool(unsigned n) {
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    threads_per_lane_ = n;
    for (Queue* q : {&quick_, &slow_})
        for (unsigned i = 0; i < n; ++i) threads_.emplace_back([q] { run(*q); });
}

WorkerPool::~WorkerPool() {
    for (Queue* q : {&quick_, &slow_}) {
        {
            std::lock_guard lk(q->mu);
            q->stopping = true;
        }
        q->cv.notify_all();
    }
    for (auto& t : threads_) t.join();
}

void WorkerPool::submit(Lane lane, Job job) {
    Queue& q = queue(lane);
    {
        std::lock_guard lk(q.mu);
        q.jobs.push_back(std::move(job));
    }
    q.cv.notify_one();
}

void WorkerPool::run(Queue& q) {
    for (;;) {
        Job job;
        {
            std::unique_lock lk(q.mu);
            q.cv.wait(lk, [&q] { return q.stopping || !q.jobs.empty(); });
            if (q.jobs.empty()) return;
            job = std::move(q.jobs.front());
            q.jobs.pop_front();
        }
        try {
            job();
        } catch (const std::exception& e) {
            log::error(std::string("worker job failed: ") + e.what());
        }
    }
}

}  // namespace keychaind
