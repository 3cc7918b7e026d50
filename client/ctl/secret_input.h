// Passphrases, passwords and PINs from a file, standard input, the terminal or (visibly) the command line.
#pragma once

#include <string>

#include "core/secret_bytes.h"

namespace keychain::ctl {

struct SecretSource {
    std::string file;    // --passphrase-file
    bool stdin_ = false; // --passphrase-stdin / --password-stdin
    std::string text;    // --passphrase TEXT (visible in ps; wiped once copied)
};

// How many of the three were given.
int sources_given(const SecretSource& s);
// The secret as a NUL-terminated C string in locked memory (one trailing newline removed
// from files and stdin). Refuses an empty secret or one with a NUL byte.
keychaind::SecretBytes read_secret_text(SecretSource& s, const char* what);
// A secret typed at the terminal (standard input is one): `prompt` on standard error, echo off
// while it is typed. From standard input as it is otherwise (one trailing newline removed).
// NUL-terminated, in locked memory; refuses an empty secret or one with a NUL byte.
keychaind::SecretBytes read_secret_interactive(const std::string& prompt, const char* what);

}  // namespace keychain::ctl
