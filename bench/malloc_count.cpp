// malloc_count.so: counts malloc() calls in the process it is preloaded into and writes the count
// to standard error on SIGUSR2 (bench/allocations-per-request). Counting only: every call goes on
// to glibc's own malloc.
//
// With MALLOC_COUNT_SITES=FILE it also records a short backtrace of every malloc() after the
// first SIGUSR2 and, at each later SIGUSR2, appends the distinct call stacks since the previous
// one, with their counts, to FILE (backtrace_symbols_fd format; the script symbolises them) and
// starts over. Recording costs a stack unwind per malloc: figures of a recording run are counts,
// not timings.
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" void* __libc_malloc(size_t size);

namespace {

std::atomic<unsigned long> g_count{0};

// Call sites: a fixed open-addressing table (no allocation while recording; malloc may not call
// malloc). Stacks start at malloc's caller.
constexpr int kDepth = 14;
constexpr size_t kSlots = 8192;
struct Site {
    uint64_t hash;
    unsigned long count;
    int depth;
    void* frames[kDepth];
};
Site g_sites[kSlots];
std::atomic_flag g_sites_lock = ATOMIC_FLAG_INIT;
std::atomic<bool> g_recording{false};
unsigned long g_dropped = 0;  // stacks that found the table full
int g_sites_fd = -1;
int g_marks = 0;

// initial-exec: a dynamic TLS access could itself call malloc.
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_malloc = false;

uint64_t hash_frames(void* const* f, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; ++i) h = (h ^ reinterpret_cast<uintptr_t>(f[i])) * 1099511628211ull;
    return h | 1;  // 0 marks an empty slot
}

void record() {
    void* frames[kDepth + 1];
    const int n = backtrace(frames, kDepth + 1);
    if (n <= 1) return;
    void* const* f = frames + 1;  // frames[0] is malloc itself
    const int depth = n - 1;
    const uint64_t h = hash_frames(f, depth);
    while (g_sites_lock.test_and_set(std::memory_order_acquire)) {
    }
    size_t i = h % kSlots;
    for (size_t probes = 0; probes < kSlots; ++probes, i = (i + 1) % kSlots) {
        Site& s = g_sites[i];
        if (s.hash == 0) {
            s.hash = h;
            s.depth = depth;
            std::memcpy(s.frames, f, sizeof(void*) * static_cast<size_t>(depth));
        } else if (s.hash != h || s.depth != depth ||
                   std::memcmp(s.frames, f, sizeof(void*) * static_cast<size_t>(depth)) != 0) {
            continue;
        }
        ++s.count;
        g_sites_lock.clear(std::memory_order_release);
        return;
    }
    ++g_dropped;
    g_sites_lock.clear(std::memory_order_release);
}

void write_text(int fd, const char* s, size_t n) {
    while (n > 0) {
        const ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= static_cast<size_t>(w);
    }
}

// Signal context: write(2) and backtrace_symbols_fd only, no stdio buffers, no malloc.
void dump_sites() {
    while (g_sites_lock.test_and_set(std::memory_order_acquire)) {
    }
    char line[96];
    int n = std::snprintf(line, sizeof line, "interval %d dropped %lu\n", g_marks - 1, g_dropped);
    write_text(g_sites_fd, line, static_cast<size_t>(n));
    for (Site& s : g_sites) {
        if (s.hash == 0) continue;
        n = std::snprintf(line, sizeof line, "site %lu %d\n", s.count, s.depth);
        write_text(g_sites_fd, line, static_cast<size_t>(n));
        backtrace_symbols_fd(s.frames, s.depth, g_sites_fd);
    }
    std::memset(static_cast<void*>(g_sites), 0, sizeof g_sites);
    g_dropped = 0;
    g_sites_lock.clear(std::memory_order_release);
}

void report(int) {
    const bool was_in = t_in_malloc;
    t_in_malloc = true;  // this thread's mallocs from here on are not the request path's
    char line[64];
    const int n = std::snprintf(line, sizeof line, "malloc_count %lu\n", g_count.load());
    if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<size_t>(n));
    if (g_sites_fd >= 0) {
        if (g_marks > 0) dump_sites();
        ++g_marks;
        g_recording.store(true);
    }
    t_in_malloc = was_in;
}

__attribute__((constructor)) void install() {
    if (const char* path = std::getenv("MALLOC_COUNT_SITES"); path != nullptr && *path != '\0') {
        g_sites_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        // The first backtrace() loads libgcc_s (which allocates): do it now, not inside malloc.
        void* warm[2];
        t_in_malloc = true;
        backtrace(warm, 2);
        t_in_malloc = false;
    }
    signal(SIGUSR2, report);
}

}  // namespace

extern "C" void* malloc(size_t size) {
    g_count.fetch_add(1, std::memory_order_relaxed);
    if (g_recording.load(std::memory_order_relaxed) && !t_in_malloc) {
        t_in_malloc = true;
        record();
        t_in_malloc = false;
    }
    return __libc_malloc(size);
}
