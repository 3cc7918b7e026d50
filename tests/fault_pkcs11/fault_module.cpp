// keychaind_fault_pkcs11: a PKCS#11 module that forwards to a real one and injects token faults.
//
// Environment (read by the process that loads the module, e.g. a keychaind started by a test):
//   KEYCHAIND_FAULT_REAL_MODULE  the module to forward to (default: SoftHSM2's)
//   KEYCHAIND_FAULT_CONTROL      a file holding one word, re-read on every intercepted call:
//     none            forward everything
//     device-removed  C_Sign, C_Encrypt, C_Decrypt and C_FindObjects* return CKR_DEVICE_REMOVED
//     session-invalid the next C_Sign* call returns CKR_SESSION_HANDLE_INVALID, once: the module
//                     then rewrites the file to "none"
//     oversized       C_Sign returns CKR_OK with *pulSignatureLen larger than the buffer it was
//                     given; C_GetAttributeValue answers size queries with 1 GiB
//     hang            C_Sign sleeps 30 s before forwarding (it stops sleeping early when the word
//                     changes, so a test that disarms the fault does not wait the rest)
//     half-written    secret keys and RSA keys show what SoftHSM2 shows of one caught while
//                     another process was writing it: an empty CKA_LABEL and CKA_ID, CKA_VALUE_LEN
//                     0, and an empty CKA_MODULUS, CKA_PUBLIC_EXPONENT and CKA_PUBLIC_KEY_INFO. As
//                     SoftHSM2 does, the process keeps that view until it calls C_Initialize
//                     again: the word counts when C_Initialize is called, not later
//   KEYCHAIND_FAULT_LOG          optional: a file to which the module appends one line for each
//                                injected fault ("<fault> <function>"), each user C_Login
//                                ("login CKR_…"), each C_GetFunctionList ("loaded <path>") and its
//                                own loading into a process ("mapped <path>", from a constructor),
//                                so a test can see what fired and which copy was ever dlopen'ed.
//
// The function list is version 2.40 (what SoftHSM2 2.6 and p11-kit 0.24 speak). An injected error
// on a one-part operation first completes the real module's operation, as a real token would end
// it, so that the session is reusable afterwards.
#include <dlfcn.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#define KC_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr const char* kDefaultRealModule = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";
constexpr CK_ULONG kOneGiB = 1UL << 30;

std::mutex g_load_mu;
CK_FUNCTION_LIST* g_real = nullptr;
CK_FUNCTION_LIST g_list{};
std::mutex g_fire_mu;

enum class Fault { None, DeviceRemoved, SessionInvalid, Oversized, Hang, HalfWritten };
std::atomic<bool> g_half_written_view{false};  // "half-written" was armed at the last C_Initialize

const char* env_or_null(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : nullptr;
}

std::string read_control() {
    const char* path = env_or_null("KEYCHAIND_FAULT_CONTROL");
    if (path == nullptr) return "none";
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "none";
    char buf[64];
    const ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0) return "none";
    std::string w(buf, static_cast<size_t>(n));
    while (!w.empty() && (w.back() == '\n' || w.back() == ' ' || w.back() == '\r' || w.back() == '\t'))
        w.pop_back();
    return w;
}

Fault current_fault() {
    const std::string w = read_control();
    if (w == "device-removed") return Fault::DeviceRemoved;
    if (w == "session-invalid") return Fault::SessionInvalid;
    if (w == "oversized") return Fault::Oversized;
    if (w == "hang") return Fault::Hang;
    if (w == "half-written") return Fault::HalfWritten;
    return Fault::None;
}

void log_line(const std::string& line) {
    const char* path = env_or_null("KEYCHAIND_FAULT_LOG");
    if (path == nullptr) return;
    const int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    const std::string l = line + "\n";
    [[maybe_unused]] const ssize_t n = write(fd, l.data(), l.size());
    close(fd);
}

void set_control(const char* word) {
    const char* path = env_or_null("KEYCHAIND_FAULT_CONTROL");
    if (path == nullptr) return;
    const int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return;
    [[maybe_unused]] const ssize_t n = write(fd, word, strlen(word));
    close(fd);
}

// session-invalid fires once per arming: the first caller to see it disarms it.
bool take_session_invalid(const char* function) {
    std::lock_guard lk(g_fire_mu);
    if (current_fault() != Fault::SessionInvalid) return false;
    set_control("none");
    log_line(std::string("session-invalid ") + function);
    return true;
}

using OnePartOp = CK_RV (*)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);

// Ends the real module's active one-part operation the way a call that fails would.
void complete_real(OnePartOp op, CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len) {
    CK_ULONG len = 0;
    if (op(s, in, in_len, nullptr, &len) != CKR_OK) return;  // an error already ended it
    std::vector<CK_BYTE> scratch(len > 0 ? len : 1);
    len = scratch.size();
    op(s, in, in_len, scratch.data(), &len);
    explicit_bzero(scratch.data(), scratch.size());
}

CK_RV device_removed(OnePartOp op, const char* function, CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len) {
    complete_real(op, s, in, in_len);
    log_line(std::string("device-removed ") + function);
    return CKR_DEVICE_REMOVED;
}

// ---- plain forwarding for every function of the 2.40 list ----

template <typename F>
struct Forward;
template <typename... Args>
struct Forward<CK_RV (*)(Args...)> {
    template <CK_RV (*CK_FUNCTION_LIST::*M)(Args...)>
    static CK_RV call(Args... args) {
        if (g_real == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
        return (g_real->*M)(args...);
    }
};
#define KC_FORWARD(name) &Forward<CK_##name>::call<&CK_FUNCTION_LIST::name>

// ---- intercepted functions ----

CK_RV shim_GetInfo(CK_INFO_PTR info) {
    const CK_RV rv = g_real->C_GetInfo(info);
    if (rv == CKR_OK && info != nullptr) {
        static constexpr char kDescription[] = "keychaind fault shim";
        memset(info->libraryDescription, ' ', sizeof info->libraryDescription);
        memcpy(info->libraryDescription, kDescription, sizeof kDescription - 1);
    }
    return rv;
}

CK_RV shim_Login(CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len) {
    const CK_RV rv = g_real->C_Login(s, user, pin, pin_len);
    if (user == CKU_USER) {
        char line[64];
        if (rv == CKR_OK)
            snprintf(line, sizeof line, "login CKR_OK");
        else if (rv == CKR_PIN_INCORRECT)
            snprintf(line, sizeof line, "login CKR_PIN_INCORRECT");
        else
            snprintf(line, sizeof line, "login CKR 0x%lx", static_cast<unsigned long>(rv));
        log_line(line);
    }
    return rv;
}

CK_RV shim_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) {
    if (take_session_invalid("C_SignInit")) return CKR_SESSION_HANDLE_INVALID;
    return g_real->C_SignInit(s, m, k);
}

CK_RV shim_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
    switch (current_fault()) {
        case Fault::DeviceRemoved:
            return device_removed(g_real->C_Sign, "C_Sign", s, data, data_len);
        case Fault::SessionInvalid:
            if (take_session_invalid("C_Sign")) {
                complete_real(g_real->C_Sign, s, data, data_len);
                return CKR_SESSION_HANDLE_INVALID;
            }
            break;
        case Fault::Oversized: {
            if (sig == nullptr || sig_len == nullptr) break;  // a size query is answered truthfully
            const CK_ULONG given = *sig_len;
            const CK_RV rv = g_real->C_Sign(s, data, data_len, sig, sig_len);
            if (rv != CKR_OK) return rv;
            *sig_len = given + 65536;
            log_line("oversized C_Sign");
            return CKR_OK;
        }
        case Fault::Hang: {
            log_line("hang C_Sign");
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            while (std::chrono::steady_clock::now() < deadline && current_fault() == Fault::Hang)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            break;
        }
        case Fault::None:
        case Fault::HalfWritten:
            break;
    }
    return g_real->C_Sign(s, data, data_len, sig, sig_len);
}

CK_RV shim_SignUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR part, CK_ULONG len) {
    if (take_session_invalid("C_SignUpdate")) return CKR_SESSION_HANDLE_INVALID;
    return g_real->C_SignUpdate(s, part, len);
}

CK_RV shim_SignFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
    if (take_session_invalid("C_SignFinal")) return CKR_SESSION_HANDLE_INVALID;
    return g_real->C_SignFinal(s, sig, sig_len);
}

CK_RV shim_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    if (current_fault() == Fault::DeviceRemoved) return device_removed(g_real->C_Encrypt, "C_Encrypt", s, in, in_len);
    return g_real->C_Encrypt(s, in, in_len, out, out_len);
}

CK_RV shim_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
    if (current_fault() == Fault::DeviceRemoved) return device_removed(g_real->C_Decrypt, "C_Decrypt", s, in, in_len);
    return g_real->C_Decrypt(s, in, in_len, out, out_len);
}

CK_RV shim_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR templ, CK_ULONG count) {
    if (current_fault() == Fault::DeviceRemoved) {
        log_line("device-removed C_FindObjectsInit");
        return CKR_DEVICE_REMOVED;
    }
    return g_real->C_FindObjectsInit(s, templ, count);
}

CK_RV shim_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max, CK_ULONG_PTR count) {
    if (current_fault() == Fault::DeviceRemoved) {
        log_line("device-removed C_FindObjects");
        return CKR_DEVICE_REMOVED;
    }
    return g_real->C_FindObjects(s, objs, max, count);
}

CK_RV shim_FindObjectsFinal(CK_SESSION_HANDLE s) {
    const CK_RV rv = g_real->C_FindObjectsFinal(s);  // the real search ends either way
    if (current_fault() == Fault::DeviceRemoved) {
        log_line("device-removed C_FindObjectsFinal");
        return CKR_DEVICE_REMOVED;
    }
    return rv;
}

CK_RV shim_Initialize(CK_VOID_PTR args) {
    if (g_real == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
    const CK_RV rv = g_real->C_Initialize(args);
    if (rv == CKR_OK) g_half_written_view = current_fault() == Fault::HalfWritten;
    return rv;
}

// The objects "half-written" shows so: secret keys and both halves of RSA keys.
bool shown_half_written(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj) {
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_KEY_TYPE type = CKK_VENDOR_DEFINED;
    CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type}};
    if (g_real->C_GetAttributeValue(s, obj, a, 2) != CKR_OK) return false;
    return cls == CKO_SECRET_KEY || ((cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY) && type == CKK_RSA);
}

// The attributes of a key as a half-written SoftHSM2 object has them.
void show_half_written(CK_ATTRIBUTE_PTR templ, CK_ULONG count) {
    bool changed = false;
    for (CK_ULONG i = 0; i < count; ++i) {
        CK_ATTRIBUTE& a = templ[i];
        if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) continue;
        if (a.type == CKA_LABEL || a.type == CKA_ID || a.type == CKA_MODULUS || a.type == CKA_PUBLIC_EXPONENT ||
            a.type == CKA_PUBLIC_KEY_INFO) {
            a.ulValueLen = 0;
            changed = true;
        } else if (a.type == CKA_VALUE_LEN && a.pValue != nullptr && a.ulValueLen == sizeof(CK_ULONG)) {
            const CK_ULONG zero = 0;
            memcpy(a.pValue, &zero, sizeof zero);
            changed = true;
        }
    }
    static std::atomic<bool> logged{false};
    if (changed && !logged.exchange(true)) log_line("half-written C_GetAttributeValue");
}

CK_RV shim_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR templ, CK_ULONG count) {
    const CK_RV rv = g_real->C_GetAttributeValue(s, obj, templ, count);
    if (templ != nullptr && rv == CKR_OK && g_half_written_view && shown_half_written(s, obj)) show_half_written(templ, count);
    if (templ == nullptr || current_fault() != Fault::Oversized) return rv;
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID) return rv;
    bool changed = false;
    for (CK_ULONG i = 0; i < count; ++i) {
        if (templ[i].pValue == nullptr && templ[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
            templ[i].ulValueLen = kOneGiB;
            changed = true;
        }
    }
    if (changed) log_line("oversized C_GetAttributeValue");
    return rv;
}

CK_RV shim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

void fill_list() {
    CK_FUNCTION_LIST& l = g_list;
    l.version = {2, 40};
    l.C_Initialize = shim_Initialize;
    l.C_Finalize = KC_FORWARD(C_Finalize);
    l.C_GetInfo = shim_GetInfo;
    l.C_GetFunctionList = shim_GetFunctionList;
    l.C_GetSlotList = KC_FORWARD(C_GetSlotList);
    l.C_GetSlotInfo = KC_FORWARD(C_GetSlotInfo);
    l.C_GetTokenInfo = KC_FORWARD(C_GetTokenInfo);
    l.C_GetMechanismList = KC_FORWARD(C_GetMechanismList);
    l.C_GetMechanismInfo = KC_FORWARD(C_GetMechanismInfo);
    l.C_InitToken = KC_FORWARD(C_InitToken);
    l.C_InitPIN = KC_FORWARD(C_InitPIN);
    l.C_SetPIN = KC_FORWARD(C_SetPIN);
    l.C_OpenSession = KC_FORWARD(C_OpenSession);
    l.C_CloseSession = KC_FORWARD(C_CloseSession);
    l.C_CloseAllSessions = KC_FORWARD(C_CloseAllSessions);
    l.C_GetSessionInfo = KC_FORWARD(C_GetSessionInfo);
    l.C_GetOperationState = KC_FORWARD(C_GetOperationState);
    l.C_SetOperationState = KC_FORWARD(C_SetOperationState);
    l.C_Login = shim_Login;
    l.C_Logout = KC_FORWARD(C_Logout);
    l.C_CreateObject = KC_FORWARD(C_CreateObject);
    l.C_CopyObject = KC_FORWARD(C_CopyObject);
    l.C_DestroyObject = KC_FORWARD(C_DestroyObject);
    l.C_GetObjectSize = KC_FORWARD(C_GetObjectSize);
    l.C_GetAttributeValue = shim_GetAttributeValue;
    l.C_SetAttributeValue = KC_FORWARD(C_SetAttributeValue);
    l.C_FindObjectsInit = shim_FindObjectsInit;
    l.C_FindObjects = shim_FindObjects;
    l.C_FindObjectsFinal = shim_FindObjectsFinal;
    l.C_EncryptInit = KC_FORWARD(C_EncryptInit);
    l.C_Encrypt = shim_Encrypt;
    l.C_EncryptUpdate = KC_FORWARD(C_EncryptUpdate);
    l.C_EncryptFinal = KC_FORWARD(C_EncryptFinal);
    l.C_DecryptInit = KC_FORWARD(C_DecryptInit);
    l.C_Decrypt = shim_Decrypt;
    l.C_DecryptUpdate = KC_FORWARD(C_DecryptUpdate);
    l.C_DecryptFinal = KC_FORWARD(C_DecryptFinal);
    l.C_DigestInit = KC_FORWARD(C_DigestInit);
    l.C_Digest = KC_FORWARD(C_Digest);
    l.C_DigestUpdate = KC_FORWARD(C_DigestUpdate);
    l.C_DigestKey = KC_FORWARD(C_DigestKey);
    l.C_DigestFinal = KC_FORWARD(C_DigestFinal);
    l.C_SignInit = shim_SignInit;
    l.C_Sign = shim_Sign;
    l.C_SignUpdate = shim_SignUpdate;
    l.C_SignFinal = shim_SignFinal;
    l.C_SignRecoverInit = KC_FORWARD(C_SignRecoverInit);
    l.C_SignRecover = KC_FORWARD(C_SignRecover);
    l.C_VerifyInit = KC_FORWARD(C_VerifyInit);
    l.C_Verify = KC_FORWARD(C_Verify);
    l.C_VerifyUpdate = KC_FORWARD(C_VerifyUpdate);
    l.C_VerifyFinal = KC_FORWARD(C_VerifyFinal);
    l.C_VerifyRecoverInit = KC_FORWARD(C_VerifyRecoverInit);
    l.C_VerifyRecover = KC_FORWARD(C_VerifyRecover);
    l.C_DigestEncryptUpdate = KC_FORWARD(C_DigestEncryptUpdate);
    l.C_DecryptDigestUpdate = KC_FORWARD(C_DecryptDigestUpdate);
    l.C_SignEncryptUpdate = KC_FORWARD(C_SignEncryptUpdate);
    l.C_DecryptVerifyUpdate = KC_FORWARD(C_DecryptVerifyUpdate);
    l.C_GenerateKey = KC_FORWARD(C_GenerateKey);
    l.C_GenerateKeyPair = KC_FORWARD(C_GenerateKeyPair);
    l.C_WrapKey = KC_FORWARD(C_WrapKey);
    l.C_UnwrapKey = KC_FORWARD(C_UnwrapKey);
    l.C_DeriveKey = KC_FORWARD(C_DeriveKey);
    l.C_SeedRandom = KC_FORWARD(C_SeedRandom);
    l.C_GenerateRandom = KC_FORWARD(C_GenerateRandom);
    l.C_GetFunctionStatus = KC_FORWARD(C_GetFunctionStatus);
    l.C_CancelFunction = KC_FORWARD(C_CancelFunction);
    l.C_WaitForSlotEvent = KC_FORWARD(C_WaitForSlotEvent);
}

std::string own_path() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&fill_list), &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
    return "?";
}

__attribute__((constructor)) void on_mapped() { log_line("mapped " + own_path()); }

CK_RV load_real() {
    std::lock_guard lk(g_load_mu);
    if (g_real != nullptr) return CKR_OK;
    const char* path = env_or_null("KEYCHAIND_FAULT_REAL_MODULE");
    if (path == nullptr) path = kDefaultRealModule;
    void* dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) return CKR_GENERAL_ERROR;
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
    CK_FUNCTION_LIST* real = nullptr;
    if (get_list == nullptr || get_list(&real) != CKR_OK || real == nullptr) {
        dlclose(dl);
        return CKR_GENERAL_ERROR;
    }
    fill_list();
    g_real = real;
    return CKR_OK;
}

CK_RV shim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
    if (list == nullptr) return CKR_ARGUMENTS_BAD;
    const CK_RV rv = load_real();
    if (rv != CKR_OK) return rv;
    // Every consumer asks for the list first: the log shows which copy of the module was used.
    log_line("loaded " + own_path());
    *list = &g_list;
    return CKR_OK;
}

CK_UTF8CHAR g_interface_name[] = "PKCS 11";

}  // namespace

namespace keychaind_fault {
// PKCS#11 3.0's CK_INTERFACE, for consumers that look for C_GetInterface first. p11-kit 0.24's
// pkcs11.h predates 3.0, so the structure is spelled out here.
struct Interface {
    CK_UTF8CHAR* name;
    void* function_list;
    CK_FLAGS flags;
};
}  // namespace keychaind_fault
using keychaind_fault::Interface;

namespace {
Interface g_interface{g_interface_name, &g_list, 0};
}  // namespace

KC_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) { return shim_GetFunctionList(list); }

KC_EXPORT CK_RV C_GetInterfaceList(Interface* list, CK_ULONG* count) {
    if (count == nullptr) return CKR_ARGUMENTS_BAD;
    if (const CK_RV rv = load_real(); rv != CKR_OK) return rv;
    if (list == nullptr) {
        *count = 1;
        return CKR_OK;
    }
    if (*count < 1) {
        *count = 1;
        return CKR_BUFFER_TOO_SMALL;
    }
    list[0] = g_interface;
    *count = 1;
    return CKR_OK;
}

KC_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR* name, CK_VERSION* version, Interface** out, CK_FLAGS flags) {
    if (out == nullptr) return CKR_ARGUMENTS_BAD;
    if (const CK_RV rv = load_real(); rv != CKR_OK) return rv;
    if (name != nullptr && strcmp(reinterpret_cast<const char*>(name), "PKCS 11") != 0) return CKR_ARGUMENTS_BAD;
    if (version != nullptr && (version->major != 2 || version->minor != 40)) return CKR_ARGUMENTS_BAD;
    if (flags != 0) return CKR_ARGUMENTS_BAD;
    *out = &g_interface;
    return CKR_OK;
}
