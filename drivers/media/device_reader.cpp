// read_device: medium checks, private or host mount, bounded no-follow reads through drivers/file.
#include "media/device_reader.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "file/file_reader.h"
#include "core/unique_fd.h"
#include "media/device_filter.h"
#include "media/mount_table.h"
#include "media/private_mount.h"

namespace keychaind::media {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(const char* what) {
    const int err = errno;
    char buf[128];
    return std::string(what) + ": " + strerror_r(err, buf, sizeof buf);
}

// The medium's sequence number as the kernel knows it now, through a descriptor that stays on
// the same disk whatever happens to the name; 0 if the kernel cannot say.
uint64_t disk_sequence(int fd) {
    uint64_t seq = 0;
    return ioctl(fd, BLKGETDISKSEQ, &seq) == 0 ? seq : 0;
}

void check_deadline(Clock::time_point deadline, const char* step) {
    if (Clock::now() > deadline) throw DeviceReadError(std::string("read timeout passed ") + step);
}

}  // namespace

std::string device_location_prefix(const BlockDevice& d) {
    std::string id = d.property("ID_SERIAL");
    if (id.empty()) id = d.devnode;
    std::string uuid = d.property("ID_FS_UUID");
    if (uuid.empty()) uuid = "no-uuid";
    return id + "/" + uuid + "/";
}

DeviceReadResult read_device(const BlockDevice& d, const std::string& staging_dir,
                             Clock::time_point deadline) {
    const std::string fs_type = kernel_fs_type(d.property("ID_FS_TYPE"));
    if (fs_type.empty()) throw DeviceReadError("has no filesystem keychaind mounts");

    // Pin the medium: this descriptor stays on the disk it opened even if the name moves on.
    UniqueFd blk(
        open(d.devnode.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY));
    if (!blk) throw DeviceReadError(errno_text("cannot be opened"));
    struct stat st {};
    if (fstat(blk.get(), &st) != 0) throw DeviceReadError(errno_text("cannot be examined"));
    if (!S_ISBLK(st.st_mode) || st.st_rdev != d.devnum)
        throw DeviceReadError("is no longer the block device udev announced");
    const uint64_t seq = disk_sequence(blk.get());
    if (d.diskseq != 0 && seq != 0 && seq != d.diskseq)
        throw DeviceReadError("holds another medium now (diskseq " + std::to_string(seq) + ")");
    check_deadline(deadline, "before mounting");

    DeviceReadResult result;
    const std::string prefix = device_location_prefix(d);
    std::optional<PrivateMount> mounted;
    std::string dir;
    if (auto host = find_mount_of(d.devnum, staging_dir)) {
        dir = *host;
        result.how = "through the host's mount at " + log::escape(*host, 1024);
    } else {
        try {
            mounted.emplace(staging_dir, d.devnode, fs_type);
        } catch (const std::exception& e) {
            throw DeviceReadError(std::string("cannot be mounted read-only as ") + fs_type + ": " +
                                  e.what());
        }
        dir = mounted->path();
        result.how = "mounted read-only in the daemon's own namespace, then unmounted";
    }
    {
        UniqueFd root(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        if (!root) throw DeviceReadError(errno_text("its filesystem root cannot be opened"));
        // btrfs shows an anonymous st_dev per subvolume; every other type shows the block device.
        if (fstat(root.get(), &st) != 0)
            throw DeviceReadError(errno_text("its filesystem root cannot be examined"));
        if (fs_type != "btrfs" && st.st_dev != d.devnum)
            throw DeviceReadError("the filesystem at " + log::escape(dir, 1024) +
                                  " is not this device's");
        if (seq != 0 && disk_sequence(blk.get()) != seq)
            throw DeviceReadError("the medium changed while it was mounted");
        check_deadline(deadline, "after mounting");

        std::vector<std::string> names;
        try {
            names = file::list_keychain_files(root.get());
        } catch (const KeychainError& e) {
            throw DeviceReadError(std::string("its root directory ") + e.what());
        }
        const auto problem = [&](std::string line) {
            log::warning(line);
            result.problems.push_back(std::move(line));
        };
        if (names.size() > kMaxKeychainFilesPerDevice) {
            problem("device " + d.text() + " holds " + std::to_string(names.size()) +
                    " keychain files; only the first " +
                    std::to_string(kMaxKeychainFilesPerDevice) + " are read");
            names.resize(kMaxKeychainFilesPerDevice);
        }
        for (const std::string& name : names) {
            check_deadline(deadline, "while reading keychain files");
            ++result.files;
            const std::string where = prefix + name;
            SecretBytes content;
            try {
                content = file::read_bounded_file(root.get(), name, file::kMaxKeychainFileSize);
            } catch (const KeychainError& e) {
                problem("keychain file " + log::escape(where, 1024) + " " + e.what());
                continue;
            }
            file::ParseResult parsed;
            try {
                parsed = file::parse_keychain_file(content.span(),
                                                   where);  // names the file in its errors
            } catch (const KeychainError& e) {
                problem(std::string("keychain file ") + e.what());
                continue;
            }
            content.clear();
            for (std::string& p : parsed.problems) problem("keychain file " + std::move(p));
            for (file::ParsedEntry& e : parsed.entries)
                result.keys.push_back({where + "#" + std::to_string(e.index), std::move(e)});
        }
    }  // every descriptor on the filesystem is closed before it is unmounted
    mounted.reset();
    check_deadline(deadline, "by the end of the read");
    return result;
}

}  // namespace keychaind::media
