// The table of systems bench-transport can run, and the payload they share.
// See transport_systems.h.
#include "transport_systems.h"

namespace bench {

std::string echo_payload() {
  std::string out(kEchoBytes, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return out;
}

const std::vector<System>& systems() {
  static const std::vector<System> table = {
      {"tcp", serve_tcp, connect_tcp, false},
      {"grpc", serve_grpc, connect_grpc, true},
#ifdef BENCH_HAVE_OURS
      {"ours", serve_ours, connect_ours, false},
#endif
#ifdef BENCH_HAVE_OURS_GRPC
      {"ours-grpc", serve_ours, connect_ours_grpc, true},
#endif
#ifdef BENCH_HAVE_OURS_SIGNED
      {"ours-signed", serve_ours_signed, connect_ours_signed, false},
#endif
  };
  return table;
}

}  // namespace bench
