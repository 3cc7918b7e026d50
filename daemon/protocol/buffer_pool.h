// Frame buffers for reuse: a reply or a request copy takes one whose capacity is already there
// instead of allocating, and gives it back (wiped) once written or handled.
#pragma once

#include "core/secret_bytes.h"

namespace keychaind::wire {

// An empty buffer, with the capacity of one given back earlier when there is one. Any thread.
WipingBuffer take_buffer();
// Wipes `b` (frames carry data keys) and keeps its capacity for take_buffer(); past the pool's
// bound, or over 64 KiB of capacity, it is freed instead. Any thread.
void give_back(WipingBuffer&& b) noexcept;

}  // namespace keychaind::wire
