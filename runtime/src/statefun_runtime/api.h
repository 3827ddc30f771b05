// The runtime's routes (api.cc) as services that carry the Runtime they
// serve: a handler receives its service with each call and reaches the
// runtime through it.
//
// Not for: public use; Runtime::add_to() is the public face.
#pragma once

#include "dispatch/core/service.h"
#include "dispatch/statefun_runtime/runtime.h"

namespace dispatch::statefun {

struct ApiService : Service {
  Runtime* runtime;
};

// dispatch.statefun.v1.IngressService, EgressService, StatefunAdminService.
struct ApiServices {
  ApiService ingress;
  ApiService egress;
  ApiService admin;
};

// The routes of `runtime`, which must outlive every table they are in.
ApiServices api_services(Runtime& runtime);

}  // namespace dispatch::statefun
