// noop(): records when each delivery started, for bench-durable's
// dispatch-to-start latency (and hands its argument to bench-durable-procs'
// endpoint). A [[dispatch::function]] is a plain function,
// so the recorder it reports to is installed through a pointer that
// bench-durable's main() sets before any call can arrive.
#include "durable_api.h"

#include "dispatch/core/service.h"
#include "durable_recorder.h"

namespace bench_durable {

StartRecorder* recorder = nullptr;
SequenceSink* sequence_sink = nullptr;

void noop(std::int64_t sequence) {
  if (recorder != nullptr) recorder->started(dispatch::this_call().dispatch_id);
  if (sequence_sink != nullptr) sequence_sink->started(sequence);
}

}  // namespace bench_durable
