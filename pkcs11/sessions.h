// SessionTable: the open sessions and the operation each one has under way.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cryptoki.h"
#include "decrypt_operation.h"
#include "sign_operation.h"

namespace keychaind::pkcs11 {

// A bound on open sessions; the next C_OpenSession answers CKR_SESSION_COUNT.
inline constexpr size_t kMaxSessions = 65536;

struct FindState {
    std::vector<CK_OBJECT_HANDLE> handles;
    size_t next = 0;
};

struct Session {
    CK_FLAGS flags = 0;
    std::optional<FindState> find;
    // An operation is taken out of its session while the daemon works on it (so the module lock
    // is never held across a request); a second call on the same session meanwhile finds none.
    std::unique_ptr<SignOperation> sign;
    std::unique_ptr<DecryptOperation> decrypt;

    bool read_write() const { return (flags & CKF_RW_SESSION) != 0; }
};

class SessionTable {
  public:
    // Throws CKR_SESSION_COUNT.
    CK_SESSION_HANDLE open(CK_FLAGS flags);
    // Throws CKR_SESSION_HANDLE_INVALID.
    Session& get(CK_SESSION_HANDLE handle);
    Session* find(CK_SESSION_HANDLE handle);
    bool close(CK_SESSION_HANDLE handle);
    void close_all() { sessions_.clear(); }
    size_t count() const { return sessions_.size(); }
    size_t read_write_count() const;
    size_t read_only_count() const { return count() - read_write_count(); }

  private:
    std::map<CK_SESSION_HANDLE, std::unique_ptr<Session>> sessions_;
    CK_SESSION_HANDLE next_handle_ = 1;
};

}  // namespace keychaind::pkcs11
