// The mount table (/proc/self/mountinfo): where, if anywhere, a device is mounted already.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keychaind::media {

struct MountEntry {
    dev_t dev = 0;            // st_dev of the mounted filesystem
    std::string root;         // the directory of the filesystem mounted there ("/" for all of it)
    std::string mount_point;  // unescaped
    std::string fs_type;
};

// Lines that do not parse are skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

// The mount point of the first mount of the whole of `dev` (root "/") in this process's mount
// namespace, outside `exclude_prefix` (our own staging directory); nullopt if there is none.
std::optional<std::string> find_mount_of(
    dev_t dev, const std::string& exclude_prefix,
    const std::string& mountinfo_path = "/proc/self/mountinfo");

}  // namespace keychaind::media
