// KEYCHAIND_P11_EXPORT: marks the C_* definitions the module exports (the version script
// keychaind-pkcs11.map hides everything else).
#pragma once

#define KEYCHAIND_P11_EXPORT extern "C" __attribute__((visibility("default")))
