// The worker job (InlineTask) and the queues (RingQueue) that carry requests between threads.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "server/inline_task.h"
#include "server/ring_queue.h"

using namespace keychaind;

namespace {
// Records where it lives, so a test can tell whether a task keeps it in place.
struct Located {
    const void** where;
    explicit Located(const void** w) : where(w) { *where = this; }
    Located(Located&& o) noexcept : where(o.where) { *where = this; }
    Located& operator=(Located&&) = delete;
};
bool inside(const void* p, const void* object, size_t size) {
    const auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(object);
    return a >= b && a < b + size;
}
}  // namespace

TEST_CASE("a ring queue keeps first-in first-out order when it wraps and when it grows", "[ring]") {
    RingQueue<std::string> q(4);
    for (int i = 0; i < 3; ++i) q.push_back(std::to_string(i));
    q.pop_front();
    q.pop_front();  // head is now at slot 2: the next pushes wrap
    for (int i = 3; i < 9; ++i) q.push_back(std::to_string(i));  // 7 queued: grows from 4 to 8
    REQUIRE(q.capacity() == 8);
    REQUIRE(q.size() == 7);
    for (size_t i = 0; i < q.size(); ++i) REQUIRE(q[i] == std::to_string(i + 2));
    for (int i = 2; i < 9; ++i) {
        REQUIRE(q.front() == std::to_string(i));
        q.pop_front();
    }
    REQUIRE(q.empty());
    // In steady state (never more than its capacity queued) it does not grow.
    int next = 0;  // what front() must hold
    for (int i = 0; i < 1000; ++i) {
        q.push_back(std::to_string(i));
        if (q.size() > 5) {
            REQUIRE(q.front() == std::to_string(next++));
            q.pop_front();
        }
    }
    REQUIRE(q.capacity() == 8);
}

TEST_CASE("a ring queue lets go of what it pops", "[ring]") {
    auto held = std::make_shared<int>(7);
    RingQueue<std::shared_ptr<int>> q(2);
    q.push_back(held);
    q.push_back(held);
    q.push_back(held);  // grows with three references
    REQUIRE(held.use_count() == 4);
    q.pop_front();
    REQUIRE(held.use_count() == 3);
    std::shared_ptr<int> taken = std::move(q.front());
    q.pop_front();
    REQUIRE(held.use_count() == 3);  // moved out, not dropped
}

TEST_CASE("an inline task keeps its captures inside itself, through moves", "[task]") {
    using Task = InlineTask<96>;
    const void* where = nullptr;
    int runs = 0;
    std::array<uint8_t, 48> padding{};  // a capture well over std::function's 16-byte buffer
    Task a([located = Located(&where), &runs, padding] { runs += 1 + padding[0]; });
    REQUIRE(inside(where, &a, sizeof a));
    Task b(std::move(a));
    REQUIRE(inside(where, &b, sizeof b));
    REQUIRE_FALSE(a);
    Task c;
    c = std::move(b);
    REQUIRE(inside(where, &c, sizeof c));
    c();
    c();
    REQUIRE(runs == 2);
}

TEST_CASE("an inline task destroys its captures once: on reset, on assignment, or with itself", "[task]") {
    auto held = std::make_shared<int>(1);
    {
        InlineTask<32> t([held] { (void)*held; });
        REQUIRE(held.use_count() == 2);
        InlineTask<32> moved(std::move(t));
        REQUIRE(held.use_count() == 2);
        moved.reset();
        REQUIRE(held.use_count() == 1);
        REQUIRE_FALSE(moved);
        moved = InlineTask<32>([held] { (void)*held; });
        REQUIRE(held.use_count() == 2);
        moved = InlineTask<32>([] {});
        REQUIRE(held.use_count() == 1);
        t = InlineTask<32>([held] { (void)*held; });
    }
    REQUIRE(held.use_count() == 1);
}
