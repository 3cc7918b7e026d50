// Backend and PKCS#11 callers; each varies its input so no layer can answer from a cache.
#include "inprocess_callers.h"

#include "soft_token.h"

namespace keychaind::bench {
namespace {

class BackendSignCaller final : public Caller {
  public:
    BackendSignCaller(std::shared_ptr<const PrivateKey> key, SignAlgorithm alg, size_t digest_size)
        : key_(std::move(key)), alg_(alg), digest_(digest_size, 0x5c) {}
    bool call() override {
        digest_.back() = static_cast<uint8_t>(digest_.back() + 1);
        return !key_->sign(alg_, digest_).empty();
    }

  private:
    std::shared_ptr<const PrivateKey> key_;
    SignAlgorithm alg_;
    std::vector<uint8_t> digest_;
};

class Pkcs11SignCaller final : public Caller {
  public:
    Pkcs11SignCaller(std::unique_ptr<test::Pkcs11Session> s, const std::string& label,
                     CK_MECHANISM_TYPE m, std::vector<uint8_t> input)
        : session_(std::move(s)),
          key_(session_->find(CKO_PRIVATE_KEY, label)),
          mech_{m, nullptr, 0},
          input_(std::move(input)) {}
    bool call() override {
        input_.back() = static_cast<uint8_t>(input_.back() + 1);
        CK_FUNCTION_LIST* fn = session_->functions();
        if (fn->C_SignInit(session_->handle(), &mech_, key_) != CKR_OK) return false;
        CK_ULONG len = sizeof sig_;
        return fn->C_Sign(session_->handle(), input_.data(), input_.size(), sig_, &len) == CKR_OK;
    }

  private:
    std::unique_ptr<test::Pkcs11Session> session_;
    CK_OBJECT_HANDLE key_;
    CK_MECHANISM mech_;
    std::vector<uint8_t> input_;
    CK_BYTE sig_[1024];
};

}  // namespace

std::unique_ptr<Caller> backend_sign_caller(std::shared_ptr<const PrivateKey> key,
                                            SignAlgorithm alg, size_t digest_size) {
    return std::make_unique<BackendSignCaller>(std::move(key), alg, digest_size);
}

std::unique_ptr<Caller> pkcs11_sign_caller(std::unique_ptr<test::Pkcs11Session> session,
                                           const std::string& key_label,
                                           CK_MECHANISM_TYPE mechanism,
                                           std::vector<uint8_t> input) {
    return std::make_unique<Pkcs11SignCaller>(std::move(session), key_label, mechanism,
                                              std::move(input));
}

std::vector<uint8_t> sha256_digest_info() {
    std::vector<uint8_t> d = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                              0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    d.resize(d.size() + 32, 0x5c);
    return d;
}

}  // namespace keychaind::bench
