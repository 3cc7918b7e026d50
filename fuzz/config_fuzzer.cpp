// Fuzz target: the daemon's TOML config (daemon/config/config.cpp), from text.
#include "config/config.h"
#include "fuzz_input.h"

using namespace keychaind;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        // A directory that does not exist: relative paths resolve, nothing is read from it.
        (void)parse_config(fuzz::as_text({data, size}), "/nonexistent/keychaind-fuzz/keychaind.conf");
    } catch (const ConfigError&) {
    }
    return 0;
}
