// FaultModule: a test's handle on keychaind_fault_pkcs11 — a copy of the module where a daemon
// accepts it, and the control and log files the module's environment variables name.
#pragma once

#include <sys/types.h>

#include <string>

#include "temp_dir.h"

namespace keychaind::test {

// The module as built (in the build tree).
const char* built_fault_module();

// A root-owned 0700 directory whose ancestors are all root-owned and not group/other-writable, so
// a module in it can be replaced by root only: beside the build tree when that qualifies, else
// under /run. Removed with its contents.
class TrustedDir {
public:
    TrustedDir();
    ~TrustedDir();
    TrustedDir(const TrustedDir&) = delete;
    TrustedDir& operator=(const TrustedDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// Copies the built module into a TrustedDir as `copy_name` with `mode`, writes "none" to a fresh
// control file and points KEYCHAIND_FAULT_CONTROL and KEYCHAIND_FAULT_LOG at the control and log
// files in this process's environment, so the module in this process and in a daemon started
// afterwards (which inherits the environment) reads them. The variables are one per process: one
// FaultModule at a time; the destructor unsets them.
class FaultModule {
public:
    explicit FaultModule(const std::string& copy_name = "keychaind_fault_pkcs11.so", mode_t mode = 0644);
    ~FaultModule();
    FaultModule(const FaultModule&) = delete;
    FaultModule& operator=(const FaultModule&) = delete;

    const std::string& module() const { return module_; }  // the copy, an absolute path
    const std::string& control_path() const { return control_; }
    // Arms a fault: none, device-removed, session-invalid, oversized, hang, half-written
    // (fault_module.cpp).
    void arm(const std::string& word) const;
    std::string word() const;  // what the control file says now (session-invalid disarms itself)
    std::string log() const;   // the module's fault log so far

private:
    TempDir dir_{"keychaind-fault"};
    TrustedDir trusted_;
    std::string module_;
    std::string control_;
    std::string log_;
};

}  // namespace keychaind::test
