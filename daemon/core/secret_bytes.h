// SecretBytes: key material held only in locked, non-dumpable, wipe-on-fork memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace keychaind {

// A wipe the compiler may not elide (explicit_bzero).
void secure_wipe(void* p, size_t n) noexcept;

// Constant-time comparison of two equal-length buffers.
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept;

namespace secure_arena {
struct Stats {
    size_t bytes_in_use = 0;   // bytes handed out and not yet freed
    size_t bytes_mapped = 0;   // bytes mapped (and locked) by the arena
    size_t live_blocks = 0;
};
Stats stats();
// When true (the default) an mlock failure throws; the demo-only switch turns it off.
void set_require_locked(bool required);
bool require_locked();
void* allocate(size_t n);
void release(void* p, size_t n) noexcept;
}  // namespace secure_arena

// Owns a buffer in the secure arena. Move-only: copies are explicit (clone()).
class SecretBytes {
public:
    SecretBytes() = default;
    explicit SecretBytes(size_t n);  // zero-filled
    SecretBytes(const void* p, size_t n);
    explicit SecretBytes(std::span<const uint8_t> s) : SecretBytes(s.data(), s.size()) {}
    SecretBytes(SecretBytes&& o) noexcept;
    SecretBytes& operator=(SecretBytes&& o) noexcept;
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    ~SecretBytes();

    SecretBytes clone() const { return SecretBytes(data_, size_); }
    uint8_t* data() noexcept { return data_; }
    const uint8_t* data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::span<const uint8_t> span() const noexcept { return {data_, size_}; }
    std::span<uint8_t> span() noexcept { return {data_, size_}; }
    std::string_view view() const noexcept {
        return {reinterpret_cast<const char*>(data_), size_};
    }
    // Shortens the visible length; the tail is wiped at once.
    void truncate(size_t n) noexcept;
    bool equals(std::span<const uint8_t> other) const noexcept {
        return constant_time_equal(span(), other);
    }
    void clear() noexcept;

private:
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

// An allocator that wipes on release: for transient buffers (wire frames carrying data keys)
// that live outside the arena but must not leave secrets behind in the heap.
template <class T>
struct WipingAllocator {
    using value_type = T;
    WipingAllocator() = default;
    template <class U>
    WipingAllocator(const WipingAllocator<U>&) noexcept {}
    T* allocate(size_t n) { return std::allocator<T>{}.allocate(n); }
    void deallocate(T* p, size_t n) noexcept {
        secure_wipe(p, n * sizeof(T));
        std::allocator<T>{}.deallocate(p, n);
    }
    template <class U>
    bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
};
using WipingBuffer = std::vector<uint8_t, WipingAllocator<uint8_t>>;

}  // namespace keychaind
