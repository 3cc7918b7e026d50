// ObjectTable: handle assignment, lookup, template search.
#include "object_table.h"

#include <algorithm>

namespace keychaind::pkcs11 {
namespace {

// Names of objects that went away are remembered (so a returning key gets its old handles back)
// up to this many; past it only the present ones are kept.
constexpr size_t kMaxRememberedNames = 65536;

}  // namespace

void ObjectTable::replace(KeyRecords records, const std::vector<NamedObject>& objects) {
    std::map<CK_OBJECT_HANDLE, std::shared_ptr<const TokenObject>> present;
    for (const NamedObject& o : objects) {
        auto [it, added] = handle_by_name_.try_emplace(o.name, next_handle_);
        if (added) ++next_handle_;
        present.emplace(it->second, o.object);
        if (o.object->private_key)
            private_keys_.insert_or_assign(it->second, *o.object->private_key);
    }
    present_ = std::move(present);
    records_ = std::move(records);
    if (handle_by_name_.size() > kMaxRememberedNames) {
        std::erase_if(handle_by_name_,
                      [&](const auto& entry) { return !present_.contains(entry.second); });
        std::erase_if(private_keys_,
                      [&](const auto& entry) { return !present_.contains(entry.first); });
    }
}

std::shared_ptr<const TokenObject> ObjectTable::find(CK_OBJECT_HANDLE handle) const {
    const auto it = present_.find(handle);
    return it == present_.end() ? nullptr : it->second;
}

std::optional<PrivateKeyRef> ObjectTable::private_key(CK_OBJECT_HANDLE handle) const {
    const auto it = private_keys_.find(handle);
    if (it == private_keys_.end()) return std::nullopt;
    return it->second;
}

std::vector<CK_OBJECT_HANDLE> ObjectTable::match(const CK_ATTRIBUTE* tmpl, CK_ULONG count) const {
    std::vector<CK_OBJECT_HANDLE> out;
    for (const auto& [handle, object] : present_)
        if (object->attributes.matches(tmpl, count)) out.push_back(handle);
    return out;
}

void ObjectTable::drop_key(const std::string& id_hex) {
    std::erase_if(present_, [&](const auto& entry) { return entry.second->key_id_hex == id_hex; });
    std::erase_if(records_, [&](const auto& r) { return r->listed.id_hex == id_hex; });
}

void ObjectTable::clear() {
    present_.clear();
    private_keys_.clear();
    records_.clear();
}

}  // namespace keychaind::pkcs11
