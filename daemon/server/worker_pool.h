// WorkerPool: threads that do the crypto so the event loop never waits on a signature.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "server/inline_task.h"
#include "server/ring_queue.h"

namespace keychaind {

// Work is queued by how long it takes. An RSA private-key operation costs 10-50x an ECDSA
// signature or an AES-GCM unwrap; in one FIFO a burst of RSA signs would hold every quick request
// behind it (Cloudflare's Keyless server learned this). Each lane has its own queue and threads,
// so quick work never waits for slow work; the kernel shares the CPUs between them.
enum class Lane {
    Quick,  // ECDSA signatures, envelope operations (AES-GCM)
    Slow,   // RSA signatures and decryption, token logins, source scans
};

class WorkerPool {
public:
    // `threads_per_lane` threads for each lane; 0: one per CPU.
    explicit WorkerPool(unsigned threads_per_lane);
    ~WorkerPool();  // finishes queued work, then joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // A job's captures live in the job (Server's request job: this, connection, opcode, caller and
    // the frame's buffer, 96 bytes): submitting allocates nothing until a lane's queue outgrows
    // its high-water mark.
    using Job = InlineTask<96>;
    void submit(Lane lane, Job job);
    size_t threads_per_lane() const { return threads_per_lane_; }

private:
    struct Queue {
        std::mutex mu;
        std::condition_variable cv;
        RingQueue<Job> jobs{64};
        bool stopping = false;
    };
    static void run(Queue& q);
    Queue& queue(Lane lane) { return lane == Lane::Quick ? quick_ : slow_; }

    Queue quick_;
    Queue slow_;
    size_t threads_per_lane_;
    std::vector<std::thread> threads_;
};

}  // namespace keychaind
