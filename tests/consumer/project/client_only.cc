// A client that links only the client half (CLIENT_ONLY): no shop::add, no
// server table. The transport is a stand-in that answers AddResponse{42}.
#include <cstdio>

#include "shop/api.dispatch.h"

namespace {
class Answer42 : public dispatch::Client {
 public:
  void call_async(std::string_view path, std::string, const dispatch::CallOptions&, Callback done) override {
    if (path != shop::remote::add.path) return done(dispatch::Error(dispatch::Code::not_found, "unexpected path"));
    shop::remote::AddResponse response;
    response.result = 42;
    done(shop::api_wire::encode(response));
  }
};
}  // namespace

int main() {
  Answer42 client;
  auto r = shop::remote::add.try_call(client, 1, 2);
  std::printf("client-only add=%lld\n", r.ok() ? static_cast<long long>(*r) : -1LL);
  return r.ok() && *r == 42 ? 0 : 1;
}
