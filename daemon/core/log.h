// Log: one line per event to stderr (the journal captures it under systemd). Never pass secrets.
#pragma once

#include <string>
#include <string_view>

namespace keychaind::log {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3 };

void set_level(Level l);
// With a journal on stderr, lines carry "<N>" syslog priority prefixes.
void set_syslog_prefix(bool on);
// After daemonizing: lines go to syslog(3) instead of stderr.
void use_syslog();
void write(Level l, std::string_view message);
inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warning(std::string_view m) { write(Level::Warning, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

// Makes text from hostile sources (labels, file names) safe for one log line: control bytes,
// escapes and non-UTF-8 become \xNN, and the result is bounded.
std::string escape(std::string_view text, size_t max_len = 256);

}  // namespace keychaind::log
