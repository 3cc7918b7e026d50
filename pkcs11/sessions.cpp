// SessionTable: handles count up and are never reused while the module is loaded.
#include "sessions.h"

namespace keychaind::pkcs11 {

CK_SESSION_HANDLE SessionTable::open(CK_FLAGS flags) {
    if (sessions_.size() >= kMaxSessions)
        throw Pkcs11Error(CKR_SESSION_COUNT, "too many open sessions");
    auto s = std::make_unique<Session>();
    s->flags = flags;
    const CK_SESSION_HANDLE h = next_handle_++;
    sessions_.emplace(h, std::move(s));
    return h;
}

Session* SessionTable::find(CK_SESSION_HANDLE handle) {
    const auto it = sessions_.find(handle);
    return it == sessions_.end() ? nullptr : it->second.get();
}

Session& SessionTable::get(CK_SESSION_HANDLE handle) {
    Session* s = find(handle);
    if (s == nullptr) throw Pkcs11Error(CKR_SESSION_HANDLE_INVALID, "no such session");
    return *s;
}

bool SessionTable::close(CK_SESSION_HANDLE handle) { return sessions_.erase(handle) > 0; }

size_t SessionTable::read_write_count() const {
    size_t n = 0;
    for (const auto& [h, s] : sessions_)
        if (s->read_write()) ++n;
    return n;
}

}  // namespace keychaind::pkcs11
