// Pkcs11Error and TokenFault: what a token call can go wrong with, and the names of CK_RV values.
#pragma once

#include <p11-kit/pkcs11.h>

#include <stdexcept>
#include <string>

namespace keychaind::token {

// "CKR_PIN_INCORRECT"; "CKR_0x80000012" for a value this build does not name.
std::string ckr_name(CK_RV rv);

// A token misbehaved: a size it returned, an attribute it would not give. The message names the
// call and never holds a secret; the token's name is added where the error leaves the driver.
class TokenFault : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A PKCS#11 call that returned something other than CKR_OK. what(): "C_Sign failed: CKR_…".
class Pkcs11Error : public TokenFault {
public:
    Pkcs11Error(std::string call, CK_RV rv)
        : TokenFault(call + " failed: " + ckr_name(rv)), call_(std::move(call)), rv_(rv) {}
    const std::string& call() const noexcept { return call_; }
    CK_RV rv() const noexcept { return rv_; }

private:
    std::string call_;
    CK_RV rv_;
};

// Throws Pkcs11Error unless rv is CKR_OK.
inline void check_rv(CK_RV rv, const char* call) {
    if (rv != CKR_OK) throw Pkcs11Error(call, rv);
}

// The token is gone (pulled out, deleted, broken): its keys become absent.
bool rv_token_gone(CK_RV rv) noexcept;
// The session is no longer valid: open another and try once more.
bool rv_session_lost(CK_RV rv) noexcept;
// The object handle is no longer valid: find the object again and try once more.
bool rv_object_lost(CK_RV rv) noexcept;
// The key or token cannot do this mechanism: the client asked for something the key cannot do.
bool rv_unsupported(CK_RV rv) noexcept;

}  // namespace keychaind::token
