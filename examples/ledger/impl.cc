// ledger::total: a function that is itself a client of another service. The
// HttpClient is created once per process (SHOP_URL, default
// http://127.0.0.1:8000) and shared by all calls, so its keep-alive
// connections are reused across requests to the ledger.
#include <cstdlib>

#include "dispatch/transport/http_client.h"
#include "ledger/api.h"
#include "shop/api.dispatch.h"

namespace ledger {
namespace {

dispatch::HttpClient& shop_client() {
  // Function-local static: a plain [[dispatch::function]] has no object to
  // carry it, and constructing per call would defeat connection reuse.
  static dispatch::HttpClient client(std::getenv("SHOP_URL") ? std::getenv("SHOP_URL") : "http://127.0.0.1:8000",
                                     dispatch::HttpClientOptions::from_env());
  return client;
}

}  // namespace

Summary total(const std::vector<int64_t>& amounts) {
  dispatch::HttpClient& shop = shop_client();
  Summary summary{0, 0, shop.base_url()};
  for (int64_t amount : amounts) {
    // Throws dispatch::Error; it reaches our caller with its code and the
    // shop's message (e.g. unavailable: cannot connect to http://...).
    summary.total = shop::remote::add(shop, summary.total, amount);
    ++summary.calls_made;
  }
  return summary;
}

}  // namespace ledger
