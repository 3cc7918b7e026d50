// The secure arena behind SecretBytes: guard-paged, mlocked, MADV_DONTDUMP|MADV_WIPEONFORK slabs.
#include "core/secret_bytes.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace keychaind {

void secure_wipe(void* p, size_t n) noexcept {
    if (p != nullptr && n != 0) explicit_bzero(p, n);
}

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept {
    if (a.size() != b.size()) return false;
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
    return diff == 0;
}

namespace secure_arena {
namespace {

// Small blocks come from shared slabs so one key does not cost a locked page; blocks larger
// than the biggest class get a mapping of their own.
constexpr size_t kMinClass = 32;
constexpr size_t kClassCount = 10;  // 32 .. 16384
constexpr size_t kSlabBytes = 64 * 1024;

size_t page_size() {
    static const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return ps;
}

struct Arena {
    std::mutex mu;
    std::array<std::vector<uint8_t*>, kClassCount> free_lists;
    Stats stats;
    bool require_locked = true;

    // A mapping with a PROT_NONE guard page either side; returns the usable body.
    uint8_t* map_guarded(size_t body) {
        const size_t ps = page_size();
        const size_t total = body + 2 * ps;
        void* m = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) throw std::bad_alloc();
        auto* base = static_cast<uint8_t*>(m);
        uint8_t* b = base + ps;
        if (mprotect(b, body, PROT_READ | PROT_WRITE) != 0) {
            munmap(base, total);
            throw std::bad_alloc();
        }
        madvise(b, body, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
        madvise(b, body, MADV_WIPEONFORK);
#endif
        // Raw syscall: the sanitizers intercept mlock() as a no-op.
        if (syscall(SYS_mlock, b, body) != 0 && require_locked) {
            munmap(base, total);
            throw std::runtime_error(
                "cannot lock secret memory (mlock failed; raise RLIMIT_MEMLOCK or grant "
                "CAP_IPC_LOCK)");
        }
        stats.bytes_mapped += body;
        return b;
    }
    void unmap_guarded(uint8_t* body_ptr, size_t body) {
        const size_t ps = page_size();
        syscall(SYS_munlock, body_ptr, body);
        munmap(body_ptr - ps, body + 2 * ps);
        stats.bytes_mapped -= body;
    }
};

Arena& arena() {
    static Arena* a = new Arena;  // never destroyed: SecretBytes may outlive static teardown
    return *a;
}

size_t class_index(size_t n) {
    size_t c = kMinClass;
    for (size_t i = 0; i < kClassCount; ++i, c <<= 1)
        if (n <= c) return i;
    return kClassCount;
}
size_t class_size(size_t i) { return kMinClass << i; }
size_t round_pages(size_t n) { return (n + page_size() - 1) / page_size() * page_size(); }

}  // namespace

Stats stats() {
    Arena& a = arena();
    std::lock_guard lk(a.mu);
    return a.stats;
}

void set_require_locked(bool required) {
    Arena& a = arena();
    std::lock_guard lk(a.mu);
    a.require_locked = required;
}

bool require_locked() {
    Arena& a = arena();
    std::lock_guard lk(a.mu);
    return a.require_locked;
}

void* allocate(size_t n) {
    if (n == 0) n = 1;
    Arena& a = arena();
    std::lock_guard lk(a.mu);
    const size_t ci = class_index(n);
    uint8_t* p;
    if (ci == kClassCount) {
        p = a.map_guarded(round_pages(n));
    } else {
        auto& fl = a.free_lists[ci];
        if (fl.empty()) {
            uint8_t* slab = a.map_guarded(kSlabBytes);
            const size_t cs = class_size(ci);
            fl.reserve(fl.size() + kSlabBytes / cs);
            for (size_t off = kSlabBytes; off >= cs; off -= cs) fl.push_back(slab + off - cs);
        }
        p = fl.back();
        fl.pop_back();
    }
    a.stats.bytes_in_use += n;
    a.stats.live_blocks++;
    return p;
}

void release(void* vp, size_t n) noexcept {
    if (vp == nullptr) return;
    if (n == 0) n = 1;
    auto* p = static_cast<uint8_t*>(vp);
    Arena& a = arena();
    const size_t ci = class_index(n);
    std::lock_guard lk(a.mu);
    if (ci == kClassCount) {
        secure_wipe(p, round_pages(n));
        a.unmap_guarded(p, round_pages(n));
    } else {
        secure_wipe(p, class_size(ci));
        a.free_lists[ci].push_back(p);
    }
    a.stats.bytes_in_use -= n;
    a.stats.live_blocks--;
}

}  // namespace secure_arena

SecretBytes::SecretBytes(size_t n) : size_(n), capacity_(n) {
    data_ = static_cast<uint8_t*>(secure_arena::allocate(n));
    std::memset(data_, 0, n);
}

SecretBytes::SecretBytes(const void* p, size_t n) : SecretBytes(n) {
    if (n) std::memcpy(data_, p, n);
}

SecretBytes::SecretBytes(SecretBytes&& o) noexcept
    : data_(o.data_), size_(o.size_), capacity_(o.capacity_) {
    o.data_ = nullptr;
    o.size_ = o.capacity_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
        clear();
        data_ = o.data_;
        size_ = o.size_;
        capacity_ = o.capacity_;
        o.data_ = nullptr;
        o.size_ = o.capacity_ = 0;
    }
    return *this;
}

SecretBytes::~SecretBytes() { clear(); }

void SecretBytes::clear() noexcept {
    if (data_ != nullptr) secure_arena::release(data_, capacity_);
    data_ = nullptr;
    size_ = capacity_ = 0;
}

void SecretBytes::truncate(size_t n) noexcept {
    if (n >= size_) return;
    secure_wipe(data_ + n, size_ - n);
    size_ = n;
}

}  // namespace keychaind
