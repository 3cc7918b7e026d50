// InlineTask: a move-only void() callable whose captures live in a fixed buffer, never on the heap.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace keychaind {

// std::function keeps captures over 16 bytes on the heap: one malloc() per worker job on the
// request path. An InlineTask holds up to `Capacity` bytes of captures in place; a callable that
// does not fit is refused at compile time, not moved to the heap.
template <size_t Capacity>
class InlineTask {
public:
    static constexpr size_t kCapacity = Capacity;

    InlineTask() noexcept = default;
    template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, InlineTask>>>
    InlineTask(F&& f) {  // implicit: call sites pass lambdas
        using Fn = std::decay_t<F>;
        static_assert(sizeof(Fn) <= Capacity, "the captures do not fit the task's buffer: capture less or enlarge it");
        static_assert(alignof(Fn) <= alignof(std::max_align_t), "over-aligned captures");
        static_assert(std::is_nothrow_move_constructible_v<Fn>, "a task moves between queues without failing");
        ::new (static_cast<void*>(buffer_)) Fn(std::forward<F>(f));
        ops_ = &kOps<Fn>;
    }
    InlineTask(InlineTask&& other) noexcept { take(other); }
    InlineTask& operator=(InlineTask&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    InlineTask(const InlineTask&) = delete;
    InlineTask& operator=(const InlineTask&) = delete;
    ~InlineTask() { reset(); }

    explicit operator bool() const noexcept { return ops_ != nullptr; }
    void operator()() { ops_->call(buffer_); }
    void reset() noexcept {
        if (ops_ == nullptr) return;
        ops_->destroy(buffer_);
        ops_ = nullptr;
    }

private:
    struct Ops {
        void (*call)(void* self);
        void (*move)(void* from, void* to) noexcept;  // and destroys `from`
        void (*destroy)(void* self) noexcept;
    };
    template <typename Fn>
    static void call_as(void* self) {
        (*static_cast<Fn*>(self))();
    }
    template <typename Fn>
    static void move_as(void* from, void* to) noexcept {
        ::new (to) Fn(std::move(*static_cast<Fn*>(from)));
        static_cast<Fn*>(from)->~Fn();
    }
    template <typename Fn>
    static void destroy_as(void* self) noexcept {
        static_cast<Fn*>(self)->~Fn();
    }
    template <typename Fn>
    static constexpr Ops kOps{&call_as<Fn>, &move_as<Fn>, &destroy_as<Fn>};

    void take(InlineTask& other) noexcept {
        if (other.ops_ == nullptr) return;
        other.ops_->move(other.buffer_, buffer_);
        ops_ = other.ops_;
        other.ops_ = nullptr;
    }

    alignas(std::max_align_t) std::byte buffer_[Capacity];
    const Ops* ops_ = nullptr;
};

}  // namespace keychaind
