// MediaSource: device events on the loop thread, reads on a reader thread, origins in the keychain.
#include "media/media_source.h"

#include <optional>
#include <vector>

#include "core/log.h"
#include "media/device_reader.h"

namespace keychaind::media {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::string_view kOriginKind = "device";

// A location's device part: everything up to the file name ("<id>/<uuid>/").
std::string prefix_of(const std::string& location) {
    return location.substr(0, location.rfind('/') + 1);
}

bool on_device(const KeyOrigin& o, const std::string& prefix) {
    return o.kind == kOriginKind && prefix_of(o.location) == prefix;
}

void merge(ScanReport& into, ScanReport from) {
    into.keys_added += from.keys_added;
    into.keys_seen += from.keys_seen;
    for (auto& p : from.problems) into.problems.push_back(std::move(p));
}

}  // namespace

MediaSource::MediaSource(DevicesConfig cfg, std::unique_ptr<DeviceMonitor> monitor,
                         std::string staging_dir, SourceHooks hooks)
    : filter_(std::move(cfg)),
      monitor_(std::move(monitor)),
      hooks_(std::move(hooks)),
      staging_dir_(std::move(staging_dir)),
      timeout_(filter_.config().read_timeout_ms) {
    reader_ = std::thread([this] { run_reader(); });
}

MediaSource::~MediaSource() { stop(); }

void MediaSource::stop() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (reader_.joinable() && reader_.get_id() != std::this_thread::get_id()) reader_.join();
    std::deque<Job> left;
    {
        std::lock_guard lk(mu_);
        left.swap(jobs_);
    }
    for (Job& j : left)
        if (j.done)
            j.done->set_value(ScanReport{
                0, 0, {"device " + j.device.text() + " not read: the daemon is stopping"}});
}

// --- events (loop thread) -----------------------------------------------------------------

void MediaSource::on_event(Keychain& keychain) {
    for (const DeviceEvent& ev : monitor_->receive()) handle(ev, keychain);
    if (monitor_->take_events_lost()) {
        log::warning(
            "udev events were lost (the monitor's socket overflowed); rescanning every device");
        enqueue(Job{BlockDevice{}, 0, &keychain, nullptr});
    }
}

void MediaSource::handle(const DeviceEvent& ev, Keychain& keychain) {
    const BlockDevice& d = ev.device;
    if (d.devnum == 0) return;
    const bool removed = ev.action == DeviceAction::Removed;
    const bool has_fs = !removed && d.is_filesystem();
    const std::string prefix = device_location_prefix(d);
    std::optional<KnownDevice> gone;
    {
        std::lock_guard lk(mu_);
        if (auto it = known_.find(d.devnum); it != known_.end()) {
            if (has_fs && it->second.diskseq == d.diskseq && it->second.prefix == prefix)
                return;  // same medium
            gone = std::move(it->second);
            known_.erase(it);
        }
    }
    if (gone)
        forget_device(keychain, *gone,
                      removed  ? "was removed"
                      : has_fs ? "holds another medium now"
                               : "no longer holds a filesystem");
    if (removed) return;
    if (auto why = filter_.refusal(d)) {
        if (!why->empty()) log_refusal_once(d, *why, log::Level::Info);
        return;
    }
    Job job{d, 0, &keychain, nullptr};
    {
        std::lock_guard lk(mu_);
        job.generation = next_generation_++;
        known_[d.devnum] = KnownDevice{d.diskseq, prefix, d.text(), job.generation};
    }
    log::info("device " + d.text() + " arrived (" + log::escape(d.property("ID_FS_TYPE"), 32) +
              " \"" + log::escape(d.property("ID_FS_LABEL"), 64) + "\"); reading it");
    enqueue(std::move(job));
}

void MediaSource::forget_device(Keychain& keychain, const KnownDevice& k, const std::string& why) {
    const size_t dropped =
        keychain.detach_origins([&](const KeyOrigin& o) { return on_device(o, k.prefix); });
    log::info("device " + k.text + " " + why + "; " + std::to_string(dropped) +
              " tethered key(s) dropped");
}

void MediaSource::log_refusal_once(const BlockDevice& d, const std::string& why, log::Level level) {
    {
        std::lock_guard lk(mu_);
        if (refusals_logged_.size() > 4096) refusals_logged_.clear();
        if (!refusals_logged_.emplace(d.devnum, d.diskseq).second) return;
    }
    log::write(level, "device " + d.text() + " ignored: " + why);
}

// --- reading (reader thread) --------------------------------------------------------------

void MediaSource::enqueue(Job job) {
    {
        std::lock_guard lk(mu_);
        if (!stopping_) {
            jobs_.push_back(std::move(job));
            cv_.notify_one();
            return;
        }
    }
    if (job.done)
        job.done->set_value(ScanReport{
            0, 0, {"device " + job.device.text() + " not read: the daemon is stopping"}});
}

void MediaSource::run_reader() {
    for (;;) {
        Job job;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        ScanReport report;
        try {
            report = job.device.devnode.empty() ? scan_devices(*job.keychain, true)
                                                : read_and_commit(job);
        } catch (const std::exception& e) {
            const std::string line = "device " + job.device.text() + ": " + e.what();
            log::error(line);
            report.problems.push_back(line);
        }
        if (job.done) job.done->set_value(std::move(report));
    }
}

policy::DevicePermit MediaSource::device_permit(const BlockDevice& d) const {
    if (!hooks_.device_permit) return policy::DevicePermit{true, false, "no policy"};
    policy::DeviceFacts f;
    f.vendor_id = d.property("ID_VENDOR_ID");
    f.model_id = d.property("ID_MODEL_ID");
    f.serial = d.property("ID_SERIAL");
    f.serial_short = d.property("ID_SERIAL_SHORT");
    f.fs_uuid = d.property("ID_FS_UUID");
    f.fs_label = d.property("ID_FS_LABEL");
    return hooks_.device_permit(f);
}

void MediaSource::audit(const BlockDevice& d, const char* event, const std::string& rule) const {
    if (!hooks_.audit) return;
    hooks_.audit(SourceEvent{event,
                             {{"device", d.devnode},
                              {"serial", d.property("ID_SERIAL")},
                              {"vendor_id", d.property("ID_VENDOR_ID")},
                              {"model_id", d.property("ID_MODEL_ID")},
                              {"fs_uuid", d.property("ID_FS_UUID")},
                              {"fs_label", d.property("ID_FS_LABEL")},
                              {"rule", rule}}});
}

ScanReport MediaSource::read_and_commit(const Job& job) {
    ScanReport report;
    const BlockDevice& d = job.device;
    const auto started = Clock::now();
    const policy::DevicePermit permit = device_permit(d);
    if (!permit.allowed) {
        const std::string line = "device " + d.text() + " may not carry keys (policy: " + permit.rule +
                                 "); not read";
        log::warning(line);
        report.problems.push_back(line);
        audit(d, "device-refused", permit.rule);
        return report;
    }
    audit(d, "device-seen", permit.rule);
    DeviceReadResult read;
    try {
        read = read_device(d, staging_dir_, started + timeout_);
    } catch (const DeviceReadError& e) {
        const std::string line = "device " + d.text() + " " + e.what() + "; no keys read from it";
        log::warning(line);
        report.problems.push_back(line);
        return report;
    }
    report.problems = std::move(read.problems);  // each already logged

    std::set<std::string> found;
    {
        // Under mu_: a removal handled on the loop thread either sees these origins and detaches
        // them, or has already forgotten the device and this read commits nothing.
        std::lock_guard lk(mu_);
        const auto it = known_.find(d.devnum);
        if (it == known_.end() || it->second.generation != job.generation) {
            log::info("device " + d.text() + " went away while it was read; nothing added from it");
            return report;
        }
        for (DeviceKey& k : read.keys) {
            if (permit.force_tethered) k.entry.tethered = true;
            const Key& key = *k.entry.key;
            const auto outcome = job.keychain->add(
                k.entry.key, KeyOrigin{std::string(kOriginKind), k.location, k.entry.tethered});
            ++report.keys_seen;
            found.insert(k.location);
            const std::string what = "key " + key.id().hex() + " \"" + log::escape(key.label()) +
                                     "\" from " + log::escape(k.location, 1024) +
                                     (k.entry.tethered ? " (tethered)" : "");
            switch (outcome) {
                case Keychain::AddOutcome::Added:
                    ++report.keys_added;
                    log::debug("added " + what);  // the server logs "key added" for every source
                    break;
                case Keychain::AddOutcome::OriginAdded:
                    log::info("another source for " + what);
                    break;
                case Keychain::AddOutcome::Unchanged:
                    break;
                case Keychain::AddOutcome::Expired:
                    log::info("not adding expired " + what);
                    break;
            }
        }
        // Entries this device held at an earlier read but holds no more.
        const std::string prefix = it->second.prefix;
        job.keychain->detach_origins([&](const KeyOrigin& o) {
            return on_device(o, prefix) && found.count(o.location) == 0;
        });
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    std::string summary = "device " + d.text() + ": " + std::to_string(report.keys_seen) +
                          " key(s) from " + std::to_string(read.files) + " keychain file(s) in " +
                          std::to_string(ms) + " ms, " + read.how;
    if (!report.problems.empty())
        summary += "; " + std::to_string(report.problems.size()) + " problem(s) logged above";
    if (report.keys_seen == 0) summary += "; it holds no valid key";
    log::info(summary);
    return report;
}

// --- scans (DISCOVER, start, reload, lost events) -------------------------------------------

ScanReport MediaSource::scan(Keychain& keychain) { return scan_devices(keychain, false); }

ScanReport MediaSource::scan_devices(Keychain& keychain, bool on_reader_thread) {
    ScanReport report;
    std::vector<BlockDevice> devices;
    uint64_t first_new_generation = 0;
    {
        std::lock_guard lk(mu_);
        first_new_generation = next_generation_;
    }
    try {
        devices = monitor_->enumerate();
    } catch (const std::exception& e) {
        const std::string line = std::string("devices: cannot list block devices: ") + e.what();
        log::error(line);
        report.problems.push_back(line);
        return report;
    }
    std::vector<BlockDevice> accepted;
    for (BlockDevice& d : devices) {
        if (auto why = filter_.refusal(d)) {
            if (!why->empty()) log_refusal_once(d, *why, log::Level::Debug);
            continue;
        }
        accepted.push_back(std::move(d));
    }

    std::vector<Job> jobs;
    std::vector<KnownDevice> gone;
    {
        std::lock_guard lk(mu_);
        std::set<dev_t> present;
        for (const BlockDevice& d : accepted) {
            present.insert(d.devnum);
            const std::string prefix = device_location_prefix(d);
            auto it = known_.find(d.devnum);
            if (it != known_.end() &&
                (it->second.diskseq != d.diskseq || it->second.prefix != prefix)) {
                gone.push_back(std::move(it->second));
                known_.erase(it);
                it = known_.end();
            }
            if (it == known_.end())
                it = known_
                         .emplace(d.devnum,
                                  KnownDevice{d.diskseq, prefix, d.text(), next_generation_++})
                         .first;
            jobs.push_back(
                Job{d, it->second.generation, &keychain,
                    on_reader_thread ? nullptr : std::make_shared<std::promise<ScanReport>>()});
        }
        // Known before this scan began and not listed now: its removal event was missed. Devices
        // that arrived during the scan stay, their read is queued.
        for (auto it = known_.begin(); it != known_.end();) {
            if (present.count(it->first) == 0 && it->second.generation < first_new_generation) {
                gone.push_back(std::move(it->second));
                it = known_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (const KnownDevice& k : gone) forget_device(keychain, k, "is no longer present");
    {
        // Origins of devices this instance never saw (a previous instance's, before a reload).
        std::lock_guard lk(mu_);
        std::set<std::string> prefixes;
        for (const auto& [dev, k] : known_) prefixes.insert(k.prefix);
        keychain.detach_origins([&](const KeyOrigin& o) {
            return o.kind == kOriginKind && prefixes.count(prefix_of(o.location)) == 0;
        });
    }

    if (on_reader_thread) {
        for (const Job& j : jobs) merge(report, read_and_commit(j));
        return report;
    }
    std::vector<std::pair<std::string, std::future<ScanReport>>> waiting;
    for (Job& j : jobs) {
        waiting.emplace_back(j.device.text(), j.done->get_future());
        enqueue(std::move(j));
    }
    // Each read stops itself at its own timeout; this bounds the wait should one be stuck in the
    // kernel (a mount that never returns).
    const auto deadline = Clock::now() + timeout_ * (waiting.size() + 1) + std::chrono::seconds(1);
    for (auto& [text, f] : waiting) {
        if (f.wait_until(deadline) == std::future_status::ready) {
            merge(report, f.get());
        } else {
            const std::string line =
                "device " + text + " is still being read; its keys come when it finishes";
            log::warning(line);
            report.problems.push_back(line);
        }
    }
    return report;
}

}  // namespace keychaind::media
