// WorkerPool: threads that do the crypto so the event loop never waits on a signature.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keychaind {

class WorkerPool {
public:
    explicit WorkerPool(unsigned threads);
    ~WorkerPool();  // finishes queued work, then joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    void submit(std::function<void()> job);
    size_t size() const { return threads_.size(); }

private:
    void run();
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace keychaind
