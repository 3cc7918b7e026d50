// Result rows (throughput and memory), the median of repeated runs, and the Markdown and CSV
// writers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "latency.h"

namespace keychaind::bench {

struct Row {
    std::string scenario;
    std::string system;
    int connections = 0;  // sockets (or PKCS#11 sessions); 0 for in-process calls
    int depth = 0;        // requests in flight per connection; 0 for in-process calls
    int threads = 0;      // caller threads (in process) or client epoll threads
    Summary summary;      // median of the runs
    long rss_kib = -1;    // memory rows
    std::string target;   // what the row must reach, with the reference figure; empty: none
    std::string met;      // "met", "missed" or empty
    int runs = 0;
};

// Median of each figure on its own (throughput, p50, p99, max, CPU) across runs.
Summary median_of(std::vector<Summary> runs);

std::string markdown_table(const std::vector<Row>& rows);
std::string markdown_memory_table(const std::vector<Row>& rows);
std::string csv(const std::vector<Row>& rows);

}  // namespace keychaind::bench
