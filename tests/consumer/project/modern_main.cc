// Serves modern/api.h in process and calls it through the generated stub.
#include <cstdio>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"
#include "modern/api.dispatch.h"

int main() {
  dispatch::DispatchTable table{&modern::remote::api_service()};
  dispatch::InProcessClient client(table);
  modern::Version v = modern::remote::newer(client, {1, 9}, {2, 0});
  std::printf("newer=%d.%d\n", v.major, v.minor);
  return v.major == 2 && v.minor == 0 ? 0 : 1;
}
