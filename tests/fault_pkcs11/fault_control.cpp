// FaultModule: the module's trusted copy, its control file and its fault log.
#include "fault_control.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#ifndef KEYCHAIND_FAULT_MODULE
#error "KEYCHAIND_FAULT_MODULE must name the built fault module"
#endif

namespace keychaind::test {
namespace {

bool trusted_ancestry(std::filesystem::path p) {
    for (p = std::filesystem::absolute(p);; p = p.parent_path()) {
        struct stat st {};
        if (stat(p.c_str(), &st) != 0 || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return false;
        if (p == p.root_path()) return true;
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

const char* built_fault_module() { return KEYCHAIND_FAULT_MODULE; }

TrustedDir::TrustedDir() {
    std::filesystem::path base = std::filesystem::path(KEYCHAIND_FAULT_MODULE).parent_path();
    if (!trusted_ancestry(base)) base = "/run";
    std::string templ = (base / "keychaind-modules-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp " + templ + " failed");
    path_ = templ;
    chmod(path_.c_str(), 0700);
}

TrustedDir::~TrustedDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

FaultModule::FaultModule(const std::string& copy_name, mode_t mode)
    : module_(trusted_.file(copy_name)), control_(dir_.file("control")), log_(dir_.file("fault.log")) {
    std::filesystem::copy_file(KEYCHAIND_FAULT_MODULE, module_, std::filesystem::copy_options::overwrite_existing);
    chmod(module_.c_str(), mode);
    arm("none");
    setenv("KEYCHAIND_FAULT_CONTROL", control_.c_str(), 1);
    setenv("KEYCHAIND_FAULT_LOG", log_.c_str(), 1);
}

FaultModule::~FaultModule() {
    unsetenv("KEYCHAIND_FAULT_CONTROL");
    unsetenv("KEYCHAIND_FAULT_LOG");
}

void FaultModule::arm(const std::string& word) const {
    std::ofstream(control_, std::ios::trunc) << word << "\n";
}

std::string FaultModule::word() const {
    std::string w = read_file(control_);
    while (!w.empty() && (w.back() == '\n' || w.back() == ' ')) w.pop_back();
    return w;
}

std::string FaultModule::log() const { return read_file(log_); }

}  // namespace keychaind::test
