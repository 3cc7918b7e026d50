// The targets, judged on the rows of one run: each judged row gets its target (with the
// reference figure it was compared with) and "met" or "missed".
#pragma once

#include <vector>

#include "results_table.h"

namespace keychaind::bench {

void apply_targets(std::vector<Row>& rows);

}  // namespace keychaind::bench
