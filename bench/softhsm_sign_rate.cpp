// softhsm_sign_rate: SoftHSM2's own signing rate in this process, one thread — the reference
// figure for keychaind's token signing throughput (which adds the socket, the protocol and the
// worker pool on top of the same C_SignInit + C_Sign pair).
//
//   softhsm_sign_rate [seconds per mechanism, default 3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "soft_token.h"

using namespace keychaind::test;

namespace {

struct Rate {
    unsigned long signs = 0;
    double seconds = 0;
};

Rate sign_for(const Pkcs11Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE type, std::vector<CK_BYTE> input,
              double seconds) {
    CK_FUNCTION_LIST* fn = s.functions();
    CK_MECHANISM mech{type, nullptr, 0};
    CK_BYTE sig[512];
    Rate r;
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    std::chrono::steady_clock::time_point now;
    do {
        check_ckr(fn->C_SignInit(s.handle(), &mech, key), "C_SignInit");
        CK_ULONG len = sizeof sig;
        check_ckr(fn->C_Sign(s.handle(), input.data(), input.size(), sig, &len), "C_Sign");
        ++r.signs;
        input[input.size() - 1] ^= static_cast<CK_BYTE>(r.signs);  // not the same digest each time
        now = std::chrono::steady_clock::now();
    } while (now < until);
    r.seconds = std::chrono::duration<double>(now - start).count();
    return r;
}

void print(const char* what, const Rate& r) {
    std::printf("%-28s %8lu signs in %.2f s = %9.1f signs/s\n", what, r.signs, r.seconds,
                static_cast<double>(r.signs) / r.seconds);
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
    if (seconds <= 0) {
        std::fprintf(stderr, "usage: %s [seconds per mechanism]\n", argv[0]);
        return 1;
    }
    try {
        SoftToken token;  // its own SOFTHSM2_CONF and token directory, removed at exit
        const auto session = token.open_session();
        const auto ec = session->find(CKO_PRIVATE_KEY, SoftToken::kEcLabel);
        const auto rsa = session->find(CKO_PRIVATE_KEY, SoftToken::kRsaLabel);
        std::vector<CK_BYTE> digest(32, 0x5c);
        // CKM_RSA_PKCS signs what it is given: a SHA-256 DigestInfo, as a TLS server's would be.
        std::vector<CK_BYTE> digest_info = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                            0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
        digest_info.resize(digest_info.size() + 32, 0x5c);

        std::printf("SoftHSM2 (%s), 1 thread, %.1f s per mechanism\n", kSoftHsmModule, seconds);
        print("CKM_ECDSA P-256", sign_for(*session, ec, CKM_ECDSA, digest, seconds));
        print("CKM_RSA_PKCS RSA-2048", sign_for(*session, rsa, CKM_RSA_PKCS, digest_info, seconds));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "softhsm_sign_rate: %s\n", e.what());
        return 1;
    }
    return 0;
}
