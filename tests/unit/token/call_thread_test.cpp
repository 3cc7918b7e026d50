// CallThread: results, exceptions, deadlines, and a stuck thread that is never given work again.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "token/call_thread.h"

using namespace keychaind::token;
using namespace std::chrono_literals;

TEST_CASE("a call that finishes in time gives its result", "[token][call_thread]") {
    CallThread t;
    const auto r = run_for_result<int>(t, [] { return 42; }, Clock::now() + 5s);
    REQUIRE(r.has_value());
    REQUIRE(*r == 42);
    REQUIRE_FALSE(t.stuck());
}

TEST_CASE("an exception in a call is thrown to its caller and the thread stays usable", "[token][call_thread]") {
    CallThread t;
    REQUIRE_THROWS_WITH(t.run([] { throw std::runtime_error("C_Sign failed"); }, Clock::now() + 5s),
                        "C_Sign failed");
    REQUIRE(run_for_result<int>(t, [] { return 7; }, Clock::now() + 5s) == 7);
}

TEST_CASE("a call over its deadline leaves the thread stuck, and it takes no more calls", "[token][call_thread]") {
    auto release = std::make_shared<std::atomic<bool>>(false);
    auto after = std::make_shared<std::atomic<bool>>(false);
    CallThread t;
    const auto started = Clock::now();
    const bool done = t.run(
        [release] {
            while (!release->load()) std::this_thread::sleep_for(1ms);
        },
        Clock::now() + 100ms);
    REQUIRE_FALSE(done);
    REQUIRE(Clock::now() - started < 2s);
    REQUIRE(t.stuck());
    // Refused at once, without waiting.
    const auto refused_at = Clock::now();
    REQUIRE_FALSE(t.run([] {}, Clock::now() + 5s));
    REQUIRE(Clock::now() - refused_at < 1s);
    // Work posted behind the stuck call runs once it returns.
    t.post([after] { after->store(true); });
    release->store(true);
    for (int i = 0; i < 500 && !after->load(); ++i) std::this_thread::sleep_for(2ms);
    REQUIRE(after->load());
}

TEST_CASE("destroying a CallThread with a stuck call does not wait for it", "[token][call_thread]") {
    auto release = std::make_shared<std::atomic<bool>>(false);
    const auto started = Clock::now();
    {
        CallThread t;
        REQUIRE_FALSE(t.run(
            [release] {
                while (!release->load()) std::this_thread::sleep_for(1ms);
            },
            Clock::now() + 50ms));
    }
    REQUIRE(Clock::now() - started < 2s);
    release->store(true);
}
