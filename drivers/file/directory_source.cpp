// DirectorySource: scan the configured directories, add their keys, detach what is gone.
#include "file/directory_source.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "file/file_reader.h"
#include "file/keychain_file.h"
#include "core/unique_fd.h"

namespace keychaind::file {
namespace {

constexpr std::string_view kOriginKind = "file";

// "dir/" for "dir" and "dir/", "/" for "/": what origin locations in `dir` start with.
std::string location_prefix(const std::string& dir) {
    std::string p = dir;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    if (p.empty() || p.back() != '/') p += '/';
    return p;
}

struct FoundKey {
    std::string location;
    ParsedEntry entry;
};

using ProblemSink = std::function<void(std::string)>;

std::string directory_open_failure(const std::string& dir) {
    const int err = errno;
    struct stat st {};
    if ((err == ELOOP || err == ENOTDIR) && lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        return "is a symbolic link; configure the directory it points to";
    if (err == ENOENT) return "does not exist";
    if (err == ENOTDIR) return "is not a directory";
    char buf[128];
    return std::string("cannot be opened: ") + strerror_r(err, buf, sizeof buf);
}

void read_directory(const std::string& dir, std::vector<FoundKey>& found,
                    const ProblemSink& problem) {
    UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dfd) {
        problem("key directory " + log::escape(dir, 1024) + " " + directory_open_failure(dir));
        return;
    }
    std::vector<std::string> names;
    try {
        names = list_keychain_files(dfd.get());
    } catch (const KeychainError& e) {
        problem("key directory " + log::escape(dir, 1024) + " " + e.what());
        return;
    }
    const std::string prefix = location_prefix(dir);
    for (const std::string& name : names) {
        const std::string path = prefix + name;
        SecretBytes content;
        try {
            content = read_bounded_file(dfd.get(), name, kMaxKeychainFileSize);
        } catch (const KeychainError& e) {
            problem("keychain file " + log::escape(path, 1024) + " " + e.what());
            continue;
        }
        ParseResult parsed;
        try {
            parsed = parse_keychain_file(content.span(), path);  // names the file in its errors
        } catch (const KeychainError& e) {
            problem(std::string("keychain file ") + e.what());
            continue;
        }
        content.clear();
        for (std::string& p : parsed.problems) problem("keychain file " + std::move(p));
        for (ParsedEntry& e : parsed.entries)
            found.push_back({path + "#" + std::to_string(e.index), std::move(e)});
    }
}

}  // namespace

DirectorySource::DirectorySource(std::vector<std::string> directories)
    : directories_(std::move(directories)) {}

ScanReport DirectorySource::scan(Keychain& keychain) {
    ScanReport report;
    const ProblemSink problem = [&](std::string line) {
        log::warning(line);
        report.problems.push_back(std::move(line));
    };
    std::vector<FoundKey> found;
    for (const std::string& dir : directories_) read_directory(dir, found, problem);

    std::vector<std::string> prefixes;
    for (const std::string& dir : directories_) prefixes.push_back(location_prefix(dir));
    const auto ours = [&](std::string_view location) {
        for (const std::string& p : prefixes)
            if (location.starts_with(p) && location.find('/', p.size()) == std::string_view::npos)
                return true;
        return false;
    };

    // What the keychain holds from these directories (a previous scan, or a previous instance
    // before a reload), by location.
    std::map<std::string, std::set<std::string>> before;
    const std::string source_prefix = std::string(kOriginKind) + ":";
    for (const KeyInfo& k : keychain.list(false))
        for (const std::string& s : k.sources)
            if (s.starts_with(source_prefix) &&
                ours(std::string_view(s).substr(source_prefix.size())))
                before[s.substr(source_prefix.size())].insert(k.id.hex());
    std::map<std::string, std::string> now;
    for (const FoundKey& f : found) now[f.location] = f.entry.key->id().hex();

    std::set<std::string> changed, vanished;
    for (const auto& [location, ids] : before) {
        const auto it = now.find(location);
        if (it == now.end())
            vanished.insert(location);
        else if (ids.size() != 1 || *ids.begin() != it->second)
            changed.insert(location);
    }
    const auto detach = [&](const std::set<std::string>& locations) {
        if (locations.empty()) return;
        for (const std::string& l : locations)
            log::debug("keychain file entry gone: " + log::escape(l, 1024));
        keychain.detach_origins([&](const KeyOrigin& o) {
            return o.kind == kOriginKind && locations.count(o.location) != 0;
        });
    };
    // A location that now holds another key is detached before adding, or the old key would keep
    // it; a vanished one after, so a key that only moved (file renamed) is never dropped.
    detach(changed);
    for (FoundKey& f : found) {
        const Key& key = *f.entry.key;
        const auto outcome = keychain.add(
            f.entry.key, KeyOrigin{std::string(kOriginKind), f.location, f.entry.tethered});
        ++report.keys_seen;
        const std::string what = "key " + key.id().hex() + " \"" + log::escape(key.label()) +
                                 "\" from " + log::escape(f.location, 1024);
        switch (outcome) {
            case Keychain::AddOutcome::Added:
                ++report.keys_added;
                log::debug("added " + what);  // the server logs "key added" for every source
                break;
            case Keychain::AddOutcome::OriginAdded:
                log::debug("another source for " + what);
                break;
            case Keychain::AddOutcome::Unchanged:
                break;
            case Keychain::AddOutcome::Expired:
                log::info("not adding expired " + what);
                break;
        }
    }
    detach(vanished);
    return report;
}

}  // namespace keychaind::file
