#include "policy_fixture.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_bytes.h"

#if !defined(KEYCHAINCTL_BINARY) || !defined(KEYCHAIN_LIBRARY)
#error "KEYCHAINCTL_BINARY and KEYCHAIN_LIBRARY must name the built keychainctl and libkeychain"
#endif

namespace keychaind::test {

std::string world_runnable_copy(const std::string& program, const TempDir& dir, const std::string& name) {
    const std::string copy = dir.file(name);
    std::filesystem::copy_file(program, copy, std::filesystem::copy_options::overwrite_existing);
    REQUIRE(chmod(copy.c_str(), 0755) == 0);
    return copy;
}

PolicyDaemon::PolicyDaemon(const std::string& keychain_json, const std::string& policy,
                           const std::string& extra_config) {
    REQUIRE(chmod(dir.path().c_str(), 0755) == 0);  // other uids reach the socket and keychainctl
    keys_dir = dir.file("keys");
    REQUIRE(mkdir(keys_dir.c_str(), 0700) == 0);
    write_file(keys_dir + "/test.4DKeyChain", keychain_json);
    policy_path = dir.file("policy.conf");
    write_policy(policy);
    audit_path = dir.file("audit.log");
    ctl = world_runnable_copy(KEYCHAINCTL_BINARY, dir, "keychainctl");
    // keychainctl's libkeychain, beside it: the build tree's copy may be out of the other uids' reach.
    world_runnable_copy(KEYCHAIN_LIBRARY, dir, std::filesystem::path(KEYCHAIN_LIBRARY).filename().string());
    out_dir = dir.file("out");
    REQUIRE(mkdir(out_dir.c_str(), 0700) == 0);
    REQUIRE(chmod(out_dir.c_str(), 01777) == 0);
    daemon = std::make_unique<DaemonProcess>(
        dir.path(), "policy = \"" + policy_path + "\"\n\n[audit]\ntarget = \"file\"\nfile = \"" + audit_path +
                        "\"\n\n[keys]\ndirectories = [\"" + keys_dir + "\"]\n" + extra_config);
    REQUIRE(chmod(socket().c_str(), 0666) == 0);
}

void PolicyDaemon::write_policy(const std::string& text) const {
    const std::string tmp = policy_path + ".new";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << text;
    }
    REQUIRE(chmod(tmp.c_str(), 0644) == 0);
    REQUIRE(rename(tmp.c_str(), policy_path.c_str()) == 0);
}

ProcessResult PolicyDaemon::ctl_as(uid_t uid, gid_t gid, const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(gid),
                                     "--clear-groups", "--", ctl};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--socket");
    argv.push_back(socket());
    ProcessOptions o;
    o.timeout = std::chrono::seconds(20);
    o.env = {"LD_LIBRARY_PATH=" + dir.path()};
    return run_process(argv, o);
}

std::string PolicyDaemon::audit_text() const {
    std::ifstream in(audit_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<nlohmann::json> PolicyDaemon::audit() const {
    std::vector<nlohmann::json> out;
    std::istringstream in(audit_text());
    std::string line;
    while (std::getline(in, line)) {
        INFO(line);
        REQUIRE(nlohmann::json::accept(line));
        out.push_back(nlohmann::json::parse(line));
    }
    return out;
}

std::vector<nlohmann::json> records_with(const std::vector<nlohmann::json>& records, const std::string& event,
                                         const nlohmann::json& match) {
    std::vector<nlohmann::json> out;
    for (const auto& r : records) {
        if (r.value("event", "") != event) continue;
        bool all = true;
        for (const auto& [k, v] : match.items()) {
            const nlohmann::json::json_pointer ptr(k);
            if (!r.contains(ptr) || r.at(ptr) != v) all = false;
        }
        if (all) out.push_back(r);
    }
    return out;
}

}  // namespace keychaind::test
