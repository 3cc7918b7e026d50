// SecretBytes and the secure arena: wiping on every way a secret can go, and the arena's books.
#include <catch2/catch.hpp>

#include <cstring>

#include "core/secret_bytes.h"
#include "test_bytes.h"

using namespace keychaind;
using keychaind::core_test::all_zero;
using keychaind::core_test::forked_child_sees_all_zero;

namespace {

SecretBytes filled(size_t n, uint8_t value) {
    SecretBytes s(n);
    std::memset(s.data(), value, n);
    return s;
}

bool all_equal(const uint8_t* p, size_t n, uint8_t value) {
    for (size_t i = 0; i < n; ++i)
        if (p[i] != value) return false;
    return true;
}

}  // namespace

// Reading a released block through a kept pointer is valid here: small blocks live in slabs the
// arena never unmaps, so the bytes read are exactly what release() left behind.
TEST_CASE("a destroyed SecretBytes leaves zeros in the arena", "[core][secret]") {
    const size_t n = GENERATE(1u, 31u, 32u, 100u, 4096u, 16384u);
    const uint8_t* raw = nullptr;
    {
        SecretBytes s = filled(n, 0xA5);
        raw = s.data();
        REQUIRE(all_equal(raw, n, 0xA5));
    }
    INFO(n << " bytes");
    REQUIRE(all_zero(raw, n));
}

TEST_CASE("clear() wipes the bytes and empties the SecretBytes", "[core][secret]") {
    SecretBytes s = filled(64, 0x5A);
    const uint8_t* raw = s.data();
    s.clear();
    REQUIRE(s.empty());
    REQUIRE(s.size() == 0);
    REQUIRE(s.data() == nullptr);
    REQUIRE(all_zero(raw, 64));
    s.clear();  // a second clear is harmless
    REQUIRE(s.empty());
}

TEST_CASE("move-assigning over a SecretBytes wipes the value it held", "[core][secret]") {
    SecretBytes target = filled(48, 0x11);
    const uint8_t* old = target.data();
    SecretBytes source = filled(20, 0x22);
    const uint8_t* moved = source.data();
    target = std::move(source);
    REQUIRE(all_zero(old, 48));
    REQUIRE(target.data() == moved);
    REQUIRE(target.size() == 20);
    REQUIRE(all_equal(target.data(), 20, 0x22));
    REQUIRE(source.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is defined
    REQUIRE(source.data() == nullptr);
}

TEST_CASE("move-constructing a SecretBytes hands over the buffer without copying", "[core][secret]") {
    SecretBytes a = filled(32, 0x33);
    const uint8_t* raw = a.data();
    SecretBytes b(std::move(a));
    REQUIRE(b.data() == raw);
    REQUIRE(a.data() == nullptr);  // NOLINT(bugprone-use-after-move)
    REQUIRE(a.size() == 0);
}

TEST_CASE("truncate() wipes the tail at once and keeps the head", "[core][secret]") {
    SecretBytes s = filled(32, 0xEE);
    const uint8_t* raw = s.data();
    s.truncate(10);
    REQUIRE(s.size() == 10);
    REQUIRE(s.data() == raw);
    REQUIRE(all_equal(raw, 10, 0xEE));
    REQUIRE(all_zero(raw + 10, 22));
    s.truncate(10);
    s.truncate(50);  // growing is not truncation: nothing changes
    REQUIRE(s.size() == 10);
    REQUIRE(all_equal(raw, 10, 0xEE));
    s.truncate(0);
    REQUIRE(s.size() == 0);
    REQUIRE(all_zero(raw, 32));
}

TEST_CASE("the arena's counters return to their previous values when secrets go", "[core][secret]") {
    const auto before = secure_arena::stats();
    {
        SecretBytes a = filled(100, 1);
        SecretBytes b = filled(7, 2);
        SecretBytes c = a.clone();
        c.truncate(3);  // truncation does not give bytes back before the block goes
        const auto during = secure_arena::stats();
        REQUIRE(during.bytes_in_use == before.bytes_in_use + 207);
        REQUIRE(during.live_blocks == before.live_blocks + 3);
        REQUIRE(during.bytes_mapped >= during.bytes_in_use);
        SecretBytes d = std::move(a);
        REQUIRE(secure_arena::stats().live_blocks == during.live_blocks);
        b = std::move(d);
        REQUIRE(secure_arena::stats().live_blocks == during.live_blocks - 1);
    }
    const auto after = secure_arena::stats();
    REQUIRE(after.bytes_in_use == before.bytes_in_use);
    REQUIRE(after.live_blocks == before.live_blocks);
}

TEST_CASE("a SecretBytes larger than 16 KiB gets its own mapping, given back when it goes",
          "[core][secret]") {
    const auto before = secure_arena::stats();
    {
        const size_t n = 16 * 1024 + 1 + GENERATE(0u, 4000u, 100000u);
        SecretBytes big(n);
        REQUIRE(all_zero(big.data(), n));
        for (size_t i = 0; i < n; ++i) big.data()[i] = static_cast<uint8_t>(i * 7);
        const SecretBytes copy = big.clone();
        REQUIRE(copy.size() == n);
        REQUIRE(copy.data() != big.data());
        REQUIRE(copy.equals(big.span()));
        const auto during = secure_arena::stats();
        REQUIRE(during.bytes_in_use == before.bytes_in_use + 2 * n);
        REQUIRE(during.live_blocks == before.live_blocks + 2);
        REQUIRE(during.bytes_mapped >= before.bytes_mapped + 2 * n);
        big.truncate(5);
        REQUIRE(big.size() == 5);
    }
    const auto after = secure_arena::stats();
    REQUIRE(after.bytes_in_use == before.bytes_in_use);
    REQUIRE(after.live_blocks == before.live_blocks);
    REQUIRE(after.bytes_mapped == before.bytes_mapped);
}

TEST_CASE("a new SecretBytes is zero-filled and a copy from memory holds those bytes",
          "[core][secret]") {
    SecretBytes zeros(40);
    REQUIRE(zeros.size() == 40);
    REQUIRE(all_zero(zeros.data(), 40));
    const uint8_t src[5] = {1, 2, 3, 4, 5};
    SecretBytes copy(src, sizeof src);
    REQUIRE(copy.view() == std::string_view("\x01\x02\x03\x04\x05", 5));
    SecretBytes none;
    REQUIRE(none.empty());
    REQUIRE(none.span().empty());
    SecretBytes zero_size(size_t{0});
    REQUIRE(zero_size.empty());
}

TEST_CASE("a block freed and handed out again starts zero-filled", "[core][secret]") {
    { SecretBytes s = filled(64, 0xCC); }
    SecretBytes again(64);
    REQUIRE(all_zero(again.data(), 64));
}

TEST_CASE("constant_time_equal compares length and every byte", "[core][secret]") {
    const std::vector<uint8_t> a{1, 2, 3, 4}, same{1, 2, 3, 4}, last{1, 2, 3, 5}, first{0, 2, 3, 4},
        shorter{1, 2, 3};
    REQUIRE(constant_time_equal(a, same));
    REQUIRE_FALSE(constant_time_equal(a, last));
    REQUIRE_FALSE(constant_time_equal(a, first));
    REQUIRE_FALSE(constant_time_equal(a, shorter));
    REQUIRE_FALSE(constant_time_equal(shorter, a));
    REQUIRE(constant_time_equal({}, {}));
    SecretBytes s(a);
    REQUIRE(s.equals(same));
    REQUIRE_FALSE(s.equals(last));
}

TEST_CASE("secure_wipe zeroes a buffer and ignores null or empty ones", "[core][secret]") {
    uint8_t buf[16];
    std::memset(buf, 0x7F, sizeof buf);
    secure_wipe(buf, 8);
    REQUIRE(all_zero(buf, 8));
    REQUIRE(all_equal(buf + 8, 8, 0x7F));
    secure_wipe(nullptr, 8);
    secure_wipe(buf + 8, 0);
    REQUIRE(all_equal(buf + 8, 8, 0x7F));
}

TEST_CASE("a forked child sees zeros where the parent keeps a secret (MADV_WIPEONFORK)", "[core][secret]") {
    // A slab block and a block with a mapping of its own.
    const size_t n = GENERATE(32u, 100000u);
    const SecretBytes s = filled(n, 0xA5);
    std::vector<uint8_t> plain(n, 0xA5);  // the control: ordinary memory is copied into the child
    INFO(n << " bytes");
    REQUIRE(forked_child_sees_all_zero(s.data(), n) == 1);
    REQUIRE(forked_child_sees_all_zero(plain.data(), n) == 0);
    REQUIRE(all_equal(s.data(), n, 0xA5));  // the parent's copy is untouched
}
