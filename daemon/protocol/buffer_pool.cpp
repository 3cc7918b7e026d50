// A mutex-guarded stack of empty, wiped buffers. Taken on one thread (a worker building a reply)
// and given back on another (the loop, once the reply is written), so it is shared, not per thread.
#include "protocol/buffer_pool.h"

#include <mutex>

namespace keychaind::wire {
namespace {

constexpr size_t kMaxPooled = 256;            // a few per connection in flight is plenty
constexpr size_t kMaxPooledCapacity = 65536;  // a rare large frame's memory is not kept

struct Pool {
    std::mutex mu;
    WipingBuffer items[kMaxPooled];
    size_t count = 0;
};

Pool& pool() {
    static Pool* p = new Pool;  // never destroyed: buffers may come back during static teardown
    return *p;
}

}  // namespace

WipingBuffer take_buffer() {
    Pool& p = pool();
    std::lock_guard lk(p.mu);
    if (p.count == 0) return {};
    return std::move(p.items[--p.count]);
}

void give_back(WipingBuffer&& b) noexcept {
    if (b.capacity() == 0) return;
    // Bytes past size() may be an older, longer frame's: zero them too (resize does, and needs
    // no allocation within the capacity).
    secure_wipe(b.data(), b.size());
    b.resize(b.capacity());
    b.clear();
    if (b.capacity() > kMaxPooledCapacity) {
        WipingBuffer().swap(b);
        return;
    }
    Pool& p = pool();
    std::lock_guard lk(p.mu);
    if (p.count < kMaxPooled) p.items[p.count++] = std::move(b);
}

}  // namespace keychaind::wire
