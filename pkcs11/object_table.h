// ObjectTable: the token's objects by handle. A handle names one object for the module's
// lifetime: the same key listed again gets the same handles.
//
// A private key's handle keeps working for C_SignInit/C_DecryptInit while its key is away (a
// USB stick pulled, a key forgotten): the daemon then answers C_Sign with KEY_NOT_PRESENT
// (CKR_DEVICE_REMOVED), and once the key is back the same handle signs again, so a server that
// found its key once (nginx's workers) need not be reloaded. Finding and reading objects shows
// only what the daemon lists.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "key_records.h"
#include "token_objects.h"

namespace keychaind::pkcs11 {

class ObjectTable {
  public:
    // The objects now present; those seen before keep their handles, those not in `objects`
    // are gone (their handles answer CKR_OBJECT_HANDLE_INVALID / CKR_KEY_HANDLE_INVALID).
    void replace(KeyRecords records, const std::vector<NamedObject>& objects);
    // The records behind the present objects, to spare GET_PUBLIC requests at the next refresh.
    const KeyRecords& records() const { return records_; }

    std::shared_ptr<const TokenObject> find(CK_OBJECT_HANDLE handle) const;
    // The private key this handle named when it was last listed, present now or not.
    std::optional<PrivateKeyRef> private_key(CK_OBJECT_HANDLE handle) const;
    // Handles of the objects matching the template, lowest first.
    std::vector<CK_OBJECT_HANDLE> match(const CK_ATTRIBUTE* tmpl, CK_ULONG count) const;
    // The daemon said this key is gone: its objects go until a refresh lists it again.
    void drop_key(const std::string& id_hex);
    void clear();

  private:
    std::map<std::string, CK_OBJECT_HANDLE> handle_by_name_;
    std::map<CK_OBJECT_HANDLE, std::shared_ptr<const TokenObject>> present_;
    std::map<CK_OBJECT_HANDLE, PrivateKeyRef> private_keys_;  // every private key handle handed out
    KeyRecords records_;
    CK_OBJECT_HANDLE next_handle_ = 1;
};

}  // namespace keychaind::pkcs11
