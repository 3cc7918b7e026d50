// BenchRun: the options of one run and the rows it has measured so far.
#pragma once

#include <cstdint>
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
    int token_sessions = 0;  // the daemon's token session pool; 0: its default
    std::string out_dir;
    std::string keychaind_binary;
    std::string pkcs11_module;
    std::string softhsm_module;
    std::string command_line;       // as typed, for the report
    std::vector<std::string> only;  // measure only rows whose scenario or system holds one of these
};

class BenchRun {
  public:
    explicit BenchRun(Options o) : options_(std::move(o)) {}
    const Options& options() const { return options_; }
    std::vector<Row>& rows() { return rows_; }

    // Registers a measurement; execute() runs it options().repeats times and keeps the median as
    // a row like `row`. `once` must keep alive what it uses (capture by value).
    void add(Row row, std::function<Summary()> once);
    // Runs the registered measurements in rounds, every one once per round, so a shared machine's
    // changing load falls on all rows alike rather than on a few. A run that throws is reported;
    // the row keeps what the other runs gave (or is left out).
    void execute();
    void add_memory(Row row);
    bool wanted(const std::string& scenario, const std::string& system) const;

  private:
    struct Job {
        Row row;
        std::function<Summary()> once;
        std::vector<Summary> runs;
    };
    Options options_;
    std::vector<Job> jobs_;
    std::vector<Row> rows_;
};

}  // namespace keychaind::bench
