// Integration: the policy's device rules with real udev events from loop devices — a stick no rule
// allows never enters the keychain, an allowed one's keys can be forced tethered, and key rules
// match device-sourced keys by their device.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "core/error.h"
#include "media_fixtures.h"
#include "test_bytes.h"

using namespace keychaind;
using namespace keychaind::test;
using wire::Opcode;
using wire::Tag;
using std::chrono::milliseconds;

namespace {

std::string one_key_stick(const TempDir& dir, const std::string& name, const std::string& label,
                          const std::string& uuid) {
    const std::string root = dir.file(name + "-root");
    mkdir(root.c_str(), 0755);
    write_file(root + "/keys.4DKeyChain", "{\"name\":\"" + label + "\",\"encodedKey\":\"" + random_key_hex() +
                                              "\",\"tethered\":false}");
    const std::string image = dir.file(name + ".img");
    make_ext4_image(image, root, uuid, 8);
    return image;
}

// GENERATE_DATA_KEY with `label` from a process running as `uid`; the reply's error code (0: ok).
int gen_datakey_as(uid_t uid, const std::string& socket, const std::string& label) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) _exit(200);
        try {
            auto b = req(Opcode::GenerateDataKey);
            b.str(Tag::Label, label);
            _exit(request(socket, std::move(b)).error_code());
        } catch (...) {
            _exit(201);
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 202;
}

}  // namespace

TEST_CASE("policy device rules decide which sticks may carry keys and force tethering", "[media][policy]") {
    require_udevd();
    TempDir sticks("keychaind-media");
    const std::string uuid_a = random_uuid(), uuid_b = random_uuid();
    const std::string image_a = one_key_stick(sticks, "a", "stick-a-kek", uuid_a);
    const std::string image_b = one_key_stick(sticks, "b", "stick-b-kek", uuid_b);

    TempDir run("keychaind-media-run");
    REQUIRE(chmod(run.path().c_str(), 0755) == 0);
    const std::string keys_dir = run.file("keys");
    REQUIRE(mkdir(keys_dir.c_str(), 0700) == 0);
    write_file(keys_dir + "/file.4DKeyChain", "{\"name\":\"file-kek\",\"encodedKey\":\"" + random_key_hex() + "\"}");
    const std::string policy = run.file("policy.conf");
    write_file(policy, "[[device]]\nname = \"ops stick\"\nmatch = { fs_uuid = \"" + uuid_a +
                           "\" }\ntethered = true\n\n"
                           "[[rule]]\nname = \"db uses the stick's keys\"\npeer = { uid = 2002 }\n"
                           "operations = [\"gen-datakey\"]\nkeys = [ { device = { fs_uuid = \"" +
                           uuid_a + "\" } } ]\n\n"
                           "[[rule]]\nname = \"root\"\npeer = { uid = 0 }\noperations = [\"all\"]\nkeys = \"any\"\n");
    REQUIRE(chmod(policy.c_str(), 0644) == 0);
    const std::string audit = run.file("audit.log");
    DaemonProcess daemon(run.path(), "policy = \"" + policy + "\"\n\n[audit]\ntarget = \"file\"\nfile = \"" + audit +
                                         "\"\n\n[keys]\ndirectories = [\"" + keys_dir + "\"]\n\n" +
                                         devices_config_for({uuid_a, uuid_b}));
    REQUIRE(chmod(daemon.socket_path().c_str(), 0666) == 0);

    LoopDevice b(image_b);
    LoopDevice a(image_a);
    REQUIRE(wait_for_label(daemon.socket_path(), "stick-a-kek", milliseconds(5000)));
    REQUIRE(daemon.wait_for_log("may not carry keys", milliseconds(5000)));
    const auto keys = list_keys(daemon.socket_path());
    CHECK(keys.count("stick-b-kek") == 0);
    REQUIRE(keys.count("stick-a-kek") == 1);
    CHECK(keys.at("stick-a-kek").tethered);  // the file says not tethered; the device rule says so

    // Key rules see the device a key came from.
    CHECK(gen_datakey_as(2002, daemon.socket_path(), "stick-a-kek") == 0);
    CHECK(gen_datakey_as(2002, daemon.socket_path(), "file-kek") == static_cast<int>(ErrorCode::Denied));

    // The audit log has the refused and the accepted device, and never a key of the refused one.
    const std::string text = read_file_text(audit);
    CHECK(text.find("\"event\":\"device-refused\"") != std::string::npos);
    CHECK(text.find("\"event\":\"device-seen\"") != std::string::npos);
    CHECK(text.find("stick-b-kek") == std::string::npos);

    // Forced tethered: pulling the stick drops its key.
    a.detach();
    CHECK(wait_until_gone(daemon.socket_path(), "stick-a-kek", milliseconds(5000)));
}
