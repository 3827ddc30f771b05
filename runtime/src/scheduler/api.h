// The scheduler's API routes (scheduler_api.cc) as services that carry the
// Scheduler they serve: a handler receives its service with each call and
// reaches the scheduler through it.
//
// Not for: public use; Scheduler::table() and add_to() are the public face.
#pragma once

#include "dispatch/core/service.h"
#include "dispatch/scheduler/scheduler.h"

namespace dispatch::scheduler {

struct ApiService : Service {
  Scheduler* scheduler;
};

// dispatch.sdk.v1.DispatchService and dispatch.scheduler.v1.AdminService.
struct ApiServices {
  ApiService dispatch;
  ApiService admin;
};

// The routes of `scheduler`, which must outlive every table they are in.
ApiServices api_services(Scheduler& scheduler);

}  // namespace dispatch::scheduler
