// Tables: throughput rows and memory rows are told apart by rss_kib.
#include "results_table.h"

#include <algorithm>
#include <cstdio>
#include <functional>

namespace keychaind::bench {
namespace {

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Fixed-point text with `decimals` digits after the point.
std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// 1234567 -> "1,234,567"
std::string thousands(double v) {
    std::string digits = fixed(v, 0);
    std::string out;
    const size_t n = digits.size();
    for (size_t i = 0; i < n; ++i) {
        out += digits[i];
        if (digits[0] != '-' && (n - i - 1) % 3 == 0 && i + 1 < n) out += ',';
    }
    return out;
}

std::string pct(double v) { return v < 0 ? "" : fixed(v, 0) + "%"; }
std::string shape(int v) { return v == 0 ? "–" : std::to_string(v); }

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace

Summary median_of(std::vector<Summary> runs) {
    const auto pick = [&](const std::function<double(const Summary&)>& f) {
        std::vector<double> v;
        for (const auto& r : runs) v.push_back(f(r));
        return median(v);
    };
    Summary m;
    m.ops =
        static_cast<uint64_t>(pick([](const Summary& s) { return static_cast<double>(s.ops); }));
    m.seconds = pick([](const Summary& s) { return s.seconds; });
    m.ops_per_s = pick([](const Summary& s) { return s.ops_per_s; });
    m.p50_us = pick([](const Summary& s) { return s.p50_us; });
    m.p99_us = pick([](const Summary& s) { return s.p99_us; });
    m.max_us = pick([](const Summary& s) { return s.max_us; });
    m.client_cpu_pct = pick([](const Summary& s) { return s.client_cpu_pct; });
    m.server_cpu_pct = pick([](const Summary& s) { return s.server_cpu_pct; });
    m.other_cpu_pct = pick([](const Summary& s) { return s.other_cpu_pct; });
    for (const auto& r : runs) m.errors += r.errors;  // any error in any run shows
    return m;
}

std::string markdown_table(const std::vector<Row>& rows) {
    std::string t =
        "| scenario | system | conns | depth | threads | ops/s | p50 µs | p99 µs | max µs | client "
        "CPU | server CPU | "
        "other CPU | errors | target | met |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| --- | --- |\n";
    for (const auto& r : rows) {
        if (r.rss_kib >= 0) continue;
        const Summary& s = r.summary;
        t += "| " + r.scenario + " | " + r.system + " | " + shape(r.connections) + " | " +
             shape(r.depth) + " | " + std::to_string(r.threads) + " | " + thousands(s.ops_per_s) +
             " | " + fixed(s.p50_us, 0) + " | " + fixed(s.p99_us, 0) + " | " + fixed(s.max_us, 0) +
             " | " + pct(s.client_cpu_pct) + " | " + pct(s.server_cpu_pct) + " | " +
             pct(s.other_cpu_pct) + " | " + std::to_string(s.errors) + " | " + r.target + " | " +
             (r.met.empty() ? "" : "**" + r.met + "**") + " |\n";
    }
    return t;
}

std::string markdown_memory_table(const std::vector<Row>& rows) {
    std::string t =
        "| measurement | system | RSS | target | met |\n| --- | --- | ---: | --- | --- |\n";
    for (const auto& r : rows) {
        if (r.rss_kib < 0) continue;
        t += "| " + r.scenario + " | " + r.system + " | " +
             fixed(static_cast<double>(r.rss_kib) / 1024.0, 1) + " MiB" + " | " + r.target + " | " +
             (r.met.empty() ? "" : "**" + r.met + "**") + " |\n";
    }
    return t;
}

std::string csv(const std::vector<Row>& rows) {
    std::string t =
        "scenario,system,connections,depth,threads,ops_per_s,p50_us,p99_us,max_us,client_cpu_pct,"
        "server_cpu_pct,"
        "other_cpu_pct,errors,runs,rss_kib,target,met\n";
    for (const auto& r : rows) {
        const Summary& s = r.summary;
        const bool memory = r.rss_kib >= 0;
        t += csv_field(r.scenario) + "," + csv_field(r.system) + "," +
             std::to_string(r.connections) + "," + std::to_string(r.depth) + "," +
             std::to_string(r.threads) + "," + (memory ? "" : fixed(s.ops_per_s, 1)) + "," +
             (memory ? "" : fixed(s.p50_us, 1)) + "," + (memory ? "" : fixed(s.p99_us, 1)) + "," +
             (memory ? "" : fixed(s.max_us, 1)) + "," +
             (s.client_cpu_pct < 0 ? "" : fixed(s.client_cpu_pct, 0)) + "," +
             (s.server_cpu_pct < 0 ? "" : fixed(s.server_cpu_pct, 0)) + "," +
             (s.other_cpu_pct < 0 ? "" : fixed(s.other_cpu_pct, 0)) + "," +
             std::to_string(s.errors) + "," + std::to_string(r.runs) + "," +
             (memory ? std::to_string(r.rss_kib) : "") + "," + csv_field(r.target) + "," + r.met +
             "\n";
    }
    return t;
}

}  // namespace keychaind::bench
