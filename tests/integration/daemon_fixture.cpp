// Shared integration-test set-up.
#include "daemon_fixture.h"

#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

#include "known_secrets.h"

namespace keychaind::test {

Reply request(const std::string& socket, wire::MessageBuilder b) {
    RawClient c(socket);
    c.send(b);
    auto r = c.receive();
    if (!r) throw std::runtime_error("no reply from the daemon");
    return std::move(*r);
}

void write_file(const std::string& path, const std::string& content) {
    if (is_keychain_file_name(path)) remember_keychain_file(content);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    f.close();
    chmod(path.c_str(), 0600);
}

KeysDaemon::KeysDaemon(const std::string& keychain_json, const std::string& extra_config) {
    keys_dir = dir.path() + "/keys";
    mkdir(keys_dir.c_str(), 0700);
    if (!keychain_json.empty()) write_file(keys_dir + "/test.4DKeyChain", keychain_json);
    daemon = std::make_unique<DaemonProcess>(dir.path(), "[keys]\ndirectories = [\"" + keys_dir + "\"]\n" + extra_config);
}

}  // namespace keychaind::test
