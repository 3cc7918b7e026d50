// WorkerPool: a fixed number of threads serving accepted connections from a bounded queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "socket_fd.h"

namespace keychain::tls_server {

struct ConnectionJob {
    SocketFd fd;
    std::string peer;
    bool tls = true;  // false: the plain HTTP port
};

class WorkerPool {
  public:
    using Handler = std::function<void(ConnectionJob&)>;
    WorkerPool(unsigned workers, size_t max_queued, Handler handler);
    ~WorkerPool();  // lets the queued and running jobs finish (each is bounded by its timeout)
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // false when the queue is full: the caller drops the connection.
    bool submit(ConnectionJob job);

  private:
    void run();

    const size_t max_queued_;
    const Handler handler_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<ConnectionJob> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;  // last: started once the rest exists
};

}  // namespace keychain::tls_server
