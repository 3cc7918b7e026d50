// MediaSource: keys from the .4DKeyChain files of removable devices, as udev reports them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "config/config.h"
#include "core/key_source.h"
#include "media/device_filter.h"
#include "media/device_monitor.h"

namespace keychaind::media {

class MediaSource final : public KeySource, public EventSource {
public:
    // `staging_dir`: where devices are mounted (private_mount_setup().staging_dir). `hooks`: the
    // policy's device rules (a device they refuse is never read) and the audit log. Starts the
    // reader thread; the monitor must already be receiving.
    MediaSource(DevicesConfig cfg, std::unique_ptr<DeviceMonitor> monitor, std::string staging_dir,
                SourceHooks hooks = {});
    ~MediaSource() override;
    MediaSource(const MediaSource&) = delete;
    MediaSource& operator=(const MediaSource&) = delete;

    std::string_view name() const override { return "devices"; }
    // Reads every present device the filter lets through (on the reader thread, waiting for it)
    // and detaches the keys of devices no longer present. Problems are logged, never thrown.
    ScanReport scan(Keychain& keychain) override;

    int event_fd() const override { return monitor_->fd(); }
    // Loop thread: a device that is gone or holds another medium loses its origins at once; a
    // new one is queued for the reader thread.
    void on_event(Keychain& keychain) override;
    void stop() override;

private:
    // A device whose keys are being read or were read: what its origins look like.
    struct KnownDevice {
        uint64_t diskseq;
        std::string prefix;   // device_location_prefix
        std::string text;     // for log lines
        uint64_t generation;  // a read commits only if its device is still this one
    };
    struct Job {
        BlockDevice device;  // empty devnode: rescan everything (events were lost)
        uint64_t generation = 0;
        Keychain* keychain = nullptr;
        std::shared_ptr<std::promise<ScanReport>> done;  // null for event-driven reads
    };

    void handle(const DeviceEvent& ev, Keychain& keychain);
    void forget_device(Keychain& keychain, const KnownDevice& k, const std::string& why);
    policy::DevicePermit device_permit(const BlockDevice& d) const;
    void audit(const BlockDevice& d, const char* event, const std::string& rule) const;
    void enqueue(Job job);
    void run_reader();
    ScanReport read_and_commit(const Job& job);
    ScanReport scan_devices(Keychain& keychain, bool on_reader_thread);
    void log_refusal_once(const BlockDevice& d, const std::string& why, log::Level level);

    DeviceFilter filter_;
    std::unique_ptr<DeviceMonitor> monitor_;
    SourceHooks hooks_;
    std::string staging_dir_;
    std::chrono::milliseconds timeout_;

    std::mutex mu_;  // everything below; held while a read's keys are committed
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
    std::map<dev_t, KnownDevice> known_;
    uint64_t next_generation_ = 1;
    std::set<std::pair<dev_t, uint64_t>> refusals_logged_;
    std::thread reader_;  // last: started when everything above exists
};

}  // namespace keychaind::media
