// Integration: secret hygiene seen from outside — after FORGET, a key's bytes are nowhere in the
// daemon's memory; the pages that hold keys are locked, undumpable and wiped in a forked child;
// no other uid, not even the daemon's own, may ptrace it or read its memory. The tests run as
// root: they read /proc/<pid>/mem and take other uids.
#include <sys/ptrace.h>
#include <unistd.h>

#include <cerrno>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon_fixture.h"
#include "known_secrets.h"
#include "process_inspection.h"
#include "test_bytes.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::test;
using wire::Opcode;
using wire::Tag;

namespace {

// The private scalar of an EC key, big-endian without leading zero bytes (mbedTLS's own parse, not
// the daemon's): 32 bytes, or fewer for one key in 256 or so; its significant bytes are what the
// scan looks for either way.
Bytes ec_private_scalar(const TestIdentity& id) {
    const std::vector<Bytes> numbers = private_numbers_of_pem(id.key_pem_pkcs8);
    REQUIRE(numbers.size() == 1);
    REQUIRE(numbers[0].size() <= 32);
    REQUIRE(numbers[0].size() >= 24);
    return numbers[0];
}

Bytes random_key() {
    Bytes k(32);
    if (random_bytes(nullptr, k.data(), k.size()) != 0) throw std::runtime_error("random_bytes failed");
    return k;
}

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// A daemon holding an AES key "kek" and an EC key "ec", both used once so their working copies
// exist too.
struct TwoKeys {
    TestIdentity ec = make_identity(KeyKind::EcP256);
    Bytes kek = random_key();
    std::string keychain_json() const {
        nlohmann::json j = nlohmann::json::array();
        j.push_back({{"name", "kek"}, {"encodedKey", hex(kek)}});
        j.push_back({{"name", "ec"}, {"privateKey", ec.key_pem_pkcs8}});
        return j.dump();
    }
    static void use(const std::string& socket) {
        auto g = req(Opcode::GenerateDataKey, 1);
        g.str(Tag::Label, "kek");
        REQUIRE(request(socket, std::move(g)).error_code() == 0);
        auto s = req(Opcode::Sign, 2);
        s.str(Tag::Label, "ec").u8(Tag::Algorithm, static_cast<uint8_t>(SignAlgorithm::EcdsaSha256)).bytes(Tag::Data, Bytes(32, 1));
        REQUIRE(request(socket, std::move(s)).error_code() == 0);
    }
};

// Yama's ptrace restriction (0 when Yama is absent): at 1 and above a process may ptrace only
// its descendants, dumpable or not.
int yama_ptrace_scope() {
    std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
    int scope = 0;
    return in >> scope ? scope : 0;
}

std::string errno_name(int e) { return e == 0 ? std::string("success") : std::string(strerrorname_np(e)); }

}  // namespace

TEST_CASE("after FORGET a key's bytes are nowhere in the daemon's memory", "[integration][hygiene]") {
#if defined(KEYCHAIND_SANITIZED_BUILD)
    // ASan's heap lives in terabyte-sized reservations and keeps freed blocks in quarantine: the
    // scan means something only for the daemon as shipped, which the plain build tests.
    WARN("skipped in the sanitizer build");
    return;
#endif
    const TwoKeys keys;
    KeysDaemon d(keys.keychain_json());
    const pid_t pid = d.daemon->pid();
    TwoKeys::use(d.socket());

    const std::vector<Needle> kek_forms = forms_of(keys.kek);
    const std::vector<Needle> ec_forms = forms_of(ec_private_scalar(keys.ec));
    // While the daemon holds them the scan finds each key once in some form: it can see them.
    CHECK_FALSE(find_in_memory(pid, kek_forms).empty());
    CHECK_FALSE(find_in_memory(pid, ec_forms).empty());

    // The key file goes too, so no rescan brings them back.
    for (const auto& entry : std::filesystem::directory_iterator(d.keys_dir)) std::filesystem::remove(entry);
    auto f = req(Opcode::Forget, 3);
    const Reply forgotten = request(d.socket(), std::move(f));
    REQUIRE(forgotten.error_code() == 0);
    CHECK(forgotten.msg.get_u32(Tag::Count) == 2u);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the workers let go of them

    for (const auto* forms : {&kek_forms, &ec_forms}) {
        const auto left = find_in_memory(pid, *forms);
        INFO((forms == &kek_forms ? "the AES key" : "the EC private key") << " is still in memory:" << describe(left));
        CHECK(left.empty());
    }
}

TEST_CASE("the pages that hold keys are locked, left out of core dumps and wiped in a forked child",
          "[integration][hygiene]") {
#if defined(KEYCHAIND_SANITIZED_BUILD)
    WARN("skipped in the sanitizer build");  // the keys are found by a memory scan, as above
    return;
#endif
    const TwoKeys keys;
    KeysDaemon d(keys.keychain_json());
    TwoKeys::use(d.socket());
    // Where the daemon keeps each key: the AES key as is in the SecretBytes arena, the EC scalar
    // in OpenSSL's secure heap (a BIGNUM: reversed on x86-64). Every mapping holding one counts.
    const auto aes_hits = find_in_memory(d.daemon->pid(), forms_of(keys.kek));
    const auto ec_hits = find_in_memory(d.daemon->pid(), forms_of(ec_private_scalar(keys.ec)));
    REQUIRE_FALSE(aes_hits.empty());
    REQUIRE_FALSE(ec_hits.empty());
    for (const auto* hits : {&aes_hits, &ec_hits}) {
        for (const MemoryHit& h : *hits) {
            INFO((hits == &aes_hits ? "the AES key" : "the EC private key") << ", " << h.form << ", is in "
                                                                               << h.mapping.describe());
            CHECK(h.mapping.path.empty());  // anonymous memory, not a file or a stack or the heap
            CHECK(h.mapping.has_flag("lo"));  // locked: never written to swap
            CHECK(h.mapping.has_flag("dd"));  // MADV_DONTDUMP: in no core dump
            CHECK(h.mapping.has_flag("wf"));  // MADV_WIPEONFORK: a forked child sees zeros
        }
    }
}

TEST_CASE("a process of another uid can neither ptrace the daemon nor open its memory or environment",
          "[integration][hygiene]") {
    KeysDaemon d(two_keks_json());
    const AccessAttempts a = try_access_as(kNobody, kNogroup, d.daemon->pid());
    CHECK(errno_name(a.ptrace_seize) == errno_name(EPERM));
    CHECK(errno_name(a.ptrace_attach) == errno_name(EPERM));
    CHECK(errno_name(a.open_mem) == errno_name(EACCES));
    CHECK(errno_name(a.open_environ) == errno_name(EACCES));
}

TEST_CASE("the daemon's own uid cannot ptrace it or open its memory: the daemon is not dumpable",
          "[integration][hygiene]") {
    // A daemon run as nobody, and a probe as nobody too: the uids match, so only the daemon's
    // PR_SET_DUMPABLE 0 stands between them.
    TempDir dir;
    const std::string keys_dir = dir.file("keys");
    REQUIRE(std::filesystem::create_directory(keys_dir));
    write_file(keys_dir + "/test.4DKeyChain", two_keks_json());
    REQUIRE(chown(keys_dir.c_str(), kNobody, kNogroup) == 0);
    REQUIRE(chown((keys_dir + "/test.4DKeyChain").c_str(), kNobody, kNogroup) == 0);
    // Where this process may not lift RLIMIT_MEMLOCK (a container without CAP_SYS_RESOURCE) the
    // daemon runs unlocked; what is tested here does not depend on locking.
    const bool lockable = DaemonProcess::memory_lock_limit_can_be_lifted();
    if (!lockable) WARN("RLIMIT_MEMLOCK cannot be lifted here: the daemon runs with allow_unlocked_memory");
    DaemonProcess daemon(dir.path(),
                         std::string(lockable ? "" : "allow_unlocked_memory = true\n") + "\n[keys]\ndirectories = [\"" +
                             keys_dir + "\"]\n",
                         {kNobody, kNogroup});
    REQUIRE(daemon.wait_for_log("label=\"kek-1\"", std::chrono::seconds(10)));
    CHECK((daemon.log().find("WITHOUT locked memory") == std::string::npos) == lockable);

    const AccessAttempts a = try_access_as(kNobody, kNogroup, daemon.pid());
    CHECK(errno_name(a.ptrace_seize) == errno_name(EPERM));
    CHECK(errno_name(a.ptrace_attach) == errno_name(EPERM));
    CHECK(errno_name(a.open_mem) == errno_name(EACCES));
    CHECK(errno_name(a.open_environ) == errno_name(EACCES));

    // The control: an ordinary (dumpable) program of the same uid is open to the same probe, so
    // the refusals above are the daemon's doing, not this machine's.
    const IdleProcess idle(kNobody, kNogroup);
    const AccessAttempts c = try_access_as(kNobody, kNogroup, idle.pid());
    CHECK(errno_name(c.open_mem) == "success");
    CHECK(errno_name(c.open_environ) == "success");
    if (yama_ptrace_scope() == 0) CHECK(errno_name(c.ptrace_seize) == "success");  // else: not a child
}
