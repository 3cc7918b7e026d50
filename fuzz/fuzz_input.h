// FuzzInput: reads a fuzz input front to back. Past its end every read gives zeros or nothing, so
// a target never needs to check lengths and every input, however short, is a valid one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace keychaind::fuzz {

class FuzzInput {
public:
    FuzzInput(const uint8_t* data, size_t size) : data_(data, size) {}

    bool empty() const { return pos_ >= data_.size(); }
    uint8_t u8() { return empty() ? 0 : data_[pos_++]; }
    uint16_t u16() { return static_cast<uint16_t>(u8() << 8 | u8()); }
    uint32_t u32() { return uint32_t{u16()} << 16 | u16(); }
    // Up to n bytes (fewer at the end).
    std::span<const uint8_t> bytes(size_t n) {
        const size_t take = std::min(n, data_.size() - std::min(pos_, data_.size()));
        const auto out = data_.subspan(std::min(pos_, data_.size()), take);
        pos_ += take;
        return out;
    }
    // A 16-bit big-endian length, then that many bytes.
    std::span<const uint8_t> chunk() { return bytes(u16()); }
    std::span<const uint8_t> rest() { return bytes(data_.size()); }

private:
    std::span<const uint8_t> data_;
    size_t pos_ = 0;
};

inline std::string_view as_text(std::span<const uint8_t> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace keychaind::fuzz
