// The names rows carry, shared by the runner and the targets that look rows up by them.
#pragma once

namespace keychaind::bench::names {

inline constexpr const char* kSignEcFile = "SIGN ECDSA P-256, file key";
inline constexpr const char* kSignRsaFile = "SIGN RSA-2048, file key";
inline constexpr const char* kSignEcToken = "SIGN ECDSA P-256, token key";
inline constexpr const char* kSignRsaToken = "SIGN RSA-2048, token key";
inline constexpr const char* kUnwrap = "UNWRAP";
inline constexpr const char* kGenerateDataKey = "GENERATE_DATA_KEY";
inline constexpr const char* kPkcs11Sign = "C_Sign CKM_ECDSA, token key";
inline constexpr const char* kMixed = "mixed run (soak)";

inline constexpr const char* kRssIdle = "RSS idle, no keys";
inline constexpr const char* kRssManyKeys = "RSS with AES-256 keys loaded";
inline constexpr const char* kRssBefore = "RSS before the mixed run";
inline constexpr const char* kRssAfter = "RSS after the mixed run";

inline constexpr const char* kKeychaind = "keychaind";
inline constexpr const char* kInProcess = "in-process, same backend, a key per thread";
inline constexpr const char* kInProcessShared = "in-process, same backend, one shared key";
inline constexpr const char* kSshAgent = "ssh-agent";
inline constexpr const char* kSoftHsm = "SoftHSM2 in-process";
inline constexpr const char* kP11KitServer = "p11-kit server + p11-kit-client.so";
inline constexpr const char* kOurModule = "keychaind PKCS#11 module";

}  // namespace keychaind::bench::names
