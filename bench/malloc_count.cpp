// malloc_count.so: counts malloc() calls in the process it is preloaded into and writes the count
// to standard error on SIGUSR2 (bench/allocations-per-request). Counting only: every call goes on
// to glibc's own malloc.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

extern "C" void* __libc_malloc(size_t size);

namespace {

std::atomic<unsigned long> g_count{0};

void report(int) {
    char line[64];
    const int n = std::snprintf(line, sizeof line, "malloc_count %lu\n", g_count.load());
    if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<size_t>(n));
}

__attribute__((constructor)) void install() { signal(SIGUSR2, report); }

}  // namespace

extern "C" void* malloc(size_t size) {
    g_count.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(size);
}
