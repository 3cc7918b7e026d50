// ReaderEvents: udev's word that a smart card reader (USB interface class 0x0b) came or went, so
// tokens are looked for at once instead of at the next poll.
#pragma once

#include <memory>

#include "core/unique_fd.h"

struct udev;
struct udev_monitor;

namespace keychaind::token {

class ReaderEvents {
public:
    // Listens on udev's netlink group for USB interfaces; where that is not possible (no udev, not
    // root) fd() is a descriptor that never becomes readable and tokens are found by polling.
    ReaderEvents();
    ~ReaderEvents();
    ReaderEvents(const ReaderEvents&) = delete;
    ReaderEvents& operator=(const ReaderEvents&) = delete;

    int fd() const;
    // Reads what is pending; true when a smart card reader was among it.
    bool drain();

private:
    struct UdevUnref {
        void operator()(udev* u) const noexcept;
    };
    struct MonitorUnref {
        void operator()(udev_monitor* m) const noexcept;
    };
    std::unique_ptr<udev, UdevUnref> udev_;
    std::unique_ptr<udev_monitor, MonitorUnref> monitor_;
    UniqueFd idle_;  // the never-readable stand-in
};

}  // namespace keychaind::token
