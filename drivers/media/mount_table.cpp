// /proc/self/mountinfo parsing (proc(5)): "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - TYPE
// SOURCE SUPER".
#include "media/mount_table.h"

#include <sys/sysmacros.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace keychaind::media {
namespace {

// Undoes the kernel's \ooo escapes of space, tab, newline and backslash.
std::string unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && s.size() - i >= 4) {
            const char a = s[i + 1], b = s[i + 2], c = s[i + 3];
            if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
                out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
                i += 3;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> f;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        const size_t start = i;
        while (i < line.size() && line[i] != ' ') ++i;
        if (i > start) f.push_back(line.substr(start, i - start));
    }
    return f;
}

bool parse_u32(std::string_view s, unsigned& v) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
    std::vector<MountEntry> entries;
    while (!text.empty()) {
        const size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        const auto f = split_spaces(line);
        if (f.size() < 10) continue;
        size_t dash = 6;
        while (dash < f.size() && f[dash] != "-") ++dash;
        if (dash + 1 >= f.size()) continue;
        const size_t colon = f[2].find(':');
        unsigned maj = 0, min = 0;
        if (colon == std::string_view::npos || !parse_u32(f[2].substr(0, colon), maj) ||
            !parse_u32(f[2].substr(colon + 1), min))
            continue;
        entries.push_back(
            {makedev(maj, min), unescape(f[3]), unescape(f[4]), unescape(f[dash + 1])});
    }
    return entries;
}

std::optional<std::string> find_mount_of(dev_t dev, const std::string& exclude_prefix,
                                         const std::string& mountinfo_path) {
    std::ifstream in(mountinfo_path);
    std::stringstream ss;
    ss << in.rdbuf();
    for (const MountEntry& e : parse_mountinfo(ss.str())) {
        if (e.dev != dev || e.root != "/") continue;
        if (!exclude_prefix.empty() &&
            (e.mount_point == exclude_prefix || e.mount_point.starts_with(exclude_prefix + "/")))
            continue;
        return e.mount_point;
    }
    return std::nullopt;
}

}  // namespace keychaind::media
