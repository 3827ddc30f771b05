#include "tally/tally.h"

namespace tally {

int64_t twice(int64_t n) { return n + n; }

}  // namespace tally
