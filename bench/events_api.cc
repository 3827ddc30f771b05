// The event function bench-events serves.
#include "events_api.h"

namespace bench_events {

Tally on_tick(const Tick& tick) { return Tally{tick.n + 1}; }

}  // namespace bench_events
