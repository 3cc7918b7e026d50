// Sampling /proc/PID for the soak's flatness checks.
#include "process_sample.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace keychaind::soak {

ProcessSample sample_process(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream status(dir + "/status");
    if (!status) throw std::runtime_error("cannot read " + dir + "/status (has the daemon exited?)");
    ProcessSample s;
    bool have_rss = false;
    for (std::string line; std::getline(status, line);) {
        std::istringstream in(line);
        std::string field;
        long value = 0;
        in >> field >> value;
        if (field == "VmRSS:") s.rss_kib = value, have_rss = true;
        else if (field == "VmLck:") s.lck_kib = value;
        else if (field == "VmHWM:") s.hwm_kib = value;
        else if (field == "Threads:") s.threads = value;
    }
    if (!have_rss || s.threads == 0) throw std::runtime_error(dir + "/status has no VmRSS or Threads line");
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir + "/fd", ec), end; !ec && it != end; it.increment(ec)) ++s.fds;
    if (ec) throw std::runtime_error("cannot list " + dir + "/fd: " + ec.message());
    return s;
}

std::string describe(const ProcessSample& s) {
    return "RSS " + std::to_string(s.rss_kib) + " KiB, VmLck " + std::to_string(s.lck_kib) + " KiB, VmHWM " +
           std::to_string(s.hwm_kib) + " KiB, threads " + std::to_string(s.threads) + ", fds " +
           std::to_string(s.fds);
}

}  // namespace keychaind::soak
