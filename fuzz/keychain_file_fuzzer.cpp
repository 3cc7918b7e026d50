// Fuzz target: the .4DKeyChain parser (drivers/file/keychain_file.cpp) on a file's bytes, as a
// device or a keys directory could hold them.
#include <cstdlib>

#include "core/error.h"
#include "core/log.h"
#include "file/keychain_file.h"

using namespace keychaind;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::set_level(log::Level::Error);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const file::ParseResult r = file::parse_keychain_file({data, size}, "/media/fuzz/keys.4DKeyChain");
        // A hostile file cannot flood the log: the problems are capped (one extra line counts the rest).
        if (r.problems.size() > file::kMaxProblemsPerFile + 1) std::abort();
        for (const auto& e : r.entries)
            if (e.key == nullptr || e.key->label().size() > file::kMaxLabelBytes) std::abort();
    } catch (const KeychainError&) {
        // The whole file is refused.
    }
    return 0;
}
