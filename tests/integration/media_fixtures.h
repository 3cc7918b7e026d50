// Fixtures for the removable-device tests: a running systemd-udevd, ext4 images, loop devices,
// and what /proc says about a process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon_fixture.h"

namespace keychaind::test {

struct CommandResult {
    int status = -1;     // exit code, or 128 + signal
    std::string output;  // stdout and stderr
};
// Runs argv[0] (looked up in PATH) without a shell.
CommandResult run_command(const std::vector<std::string>& argv);
// As run_command, but throws with the output when the exit code is not 0.
std::string must_run(const std::vector<std::string>& argv);

// systemd-udevd for this process: the one already running, or one started here (and stopped,
// by its pid, when the process ends). Throws, naming the reason, when none can be had: the
// device tests must fail, not skip, on a machine without udev.
void require_udevd();
void udev_settle();

// A fresh random UUID ("xxxxxxxx-xxxx-4xxx-...").
std::string random_uuid();
// 64 random hexadecimal digits: an encodedKey.
std::string random_key_hex();

// An ext4 image made from the contents of `source_dir` (mkfs.ext4 -d), with this fs UUID.
void make_ext4_image(const std::string& image, const std::string& source_dir,
                     const std::string& uuid, unsigned size_mib = 16);

// A loop device attached to an image (losetup -P --show -f); detached when destroyed.
class LoopDevice {
public:
    explicit LoopDevice(const std::string& image);
    ~LoopDevice();
    LoopDevice(const LoopDevice&) = delete;
    LoopDevice& operator=(const LoopDevice&) = delete;

    const std::string& path() const { return path_; }  // "/dev/loop3"
    dev_t devnum() const { return devnum_; }
    std::string majmin() const;  // "7:3", as mountinfo writes it
    void detach();
    bool attached() const { return !path_.empty() && attached_; }

private:
    std::string path_;
    dev_t devnum_ = 0;
    bool attached_ = false;
};

// A stick's root with everything issue 3 names: good files, hostile files, a subfolder.
struct StickContent {
    std::vector<std::string> expected_labels;  // the keys the daemon must load, and only these
    std::vector<std::string> tethered_labels;
    std::vector<std::string> refused_log_lines;  // one per hostile file
};
// Fills `root` (which must exist); `outside_file` is a file outside the image that the symlink
// points at (it holds a valid key that must not load).
StickContent make_hostile_stick(const std::string& root, const std::string& outside_file);

// /proc/<pid>: open descriptors, mount table lines, lines naming a device (resident memory:
// status_kib, process_inspection.h).
size_t fd_count(pid_t pid);
size_t mount_count(pid_t pid);                           // pid 0: this process
size_t mounts_of(pid_t pid, const std::string& majmin);  // pid 0: this process

// Protocol helpers (RawClient underneath).
struct ListedKey {
    std::string label;
    std::vector<std::string> sources;
    bool tethered = false;
};
std::map<std::string, ListedKey> list_keys(const std::string& socket);  // by label
// WAIT for a label; true when present within the timeout.
bool wait_for_label(const std::string& socket, const std::string& label,
                    std::chrono::milliseconds timeout);
// Polls LIST_KEYS until `label` is gone.
bool wait_until_gone(const std::string& socket, const std::string& label,
                     std::chrono::milliseconds timeout);

// The [devices] config that accepts loop devices carrying exactly these filesystem UUIDs.
std::string devices_config_for(const std::vector<std::string>& uuids);

}  // namespace keychaind::test
