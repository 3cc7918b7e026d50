// The PKCS#11 header the module is built against, and the module's one error type.
#pragma once

#include <p11-kit/pkcs11.h>

#include <stdexcept>
#include <string>

namespace keychaind::pkcs11 {

// A failure inside the module: the CK_RV the caller gets, and the detail for the debug log.
// Every entry point turns it into its return value; nothing is ever thrown across the C ABI.
class Pkcs11Error : public std::runtime_error {
  public:
    Pkcs11Error(CK_RV rv, const std::string& detail) : std::runtime_error(detail), rv_(rv) {}
    CK_RV rv() const noexcept { return rv_; }

  private:
    CK_RV rv_;
};

// The one slot the module shows.
inline constexpr CK_SLOT_ID kSlotId = 0;

}  // namespace keychaind::pkcs11
