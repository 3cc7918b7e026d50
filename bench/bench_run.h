// BenchRun: the options of one run and the rows it has measured so far.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "measurement.h"
#include "results_table.h"

namespace keychaind::bench {

struct Options {
    Timing timing;
    int repeats = 5;
    bool smoke = false;
    std::vector<int> connections = {1, 8, 64};
    std::vector<int> depths = {1, 64};
    std::vector<int> threads = {1, 2, 8};  // in-process references
    int client_threads = 1;
    uint64_t soak_ops = 100000;
    int rss_keys = 10000;
    std::string out_dir;
    std::string keychaind_binary;
    std::string pkcs11_module;
    std::string softhsm_module;
    std::string command_line;  // as typed, for the report
    std::vector<std::string> only;  // measure only rows whose scenario or system holds one of these
};

class BenchRun {
public:
    explicit BenchRun(Options o) : options_(std::move(o)) {}
    const Options& options() const { return options_; }
    std::vector<Row>& rows() { return rows_; }

    // Runs `once` options().repeats times and keeps the median as a row like `row`. A run that
    // throws is reported and the row is kept with what the other runs gave (or dropped).
    void measure(Row row, const std::function<Summary()>& once);
    void add_memory(Row row);
    bool wanted(const std::string& scenario, const std::string& system) const;

private:
    Options options_;
    std::vector<Row> rows_;
};

}  // namespace keychaind::bench
