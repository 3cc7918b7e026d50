// kc_client's own bookkeeping: the event queue and dropping the connection.
#include "session.h"

void kc_client::queue_event(keychaind::WipingBuffer frame) {
    event_bytes += frame.size();
    events.push_back(std::move(frame));
    while (events.size() > keychain::detail::kMaxQueuedEvents ||
           (event_bytes > keychain::detail::kMaxQueuedEventBytes && events.size() > 1)) {
        event_bytes -= events.front().size();
        events.pop_front();
        ++events_lost;
    }
}

void kc_client::drop_connection() noexcept {
    conn.close();
    if (subscription) subscription_lost = true;
    subscription.reset();
}
