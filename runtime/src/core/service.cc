// DispatchTable: routing by path and by function name, and the one place
// where a handler's exceptions become dispatch::Errors.
#include "dispatch/core/service.h"

#include <functional>

namespace dispatch {
namespace {
thread_local const CallContext* current_call = nullptr;

// Installs a context as this_call() for one scope, restoring the outer one
// (a function may run another in-process).
class ScopedCall {
 public:
  explicit ScopedCall(const CallContext& context) : saved_(current_call) { current_call = &context; }
  ~ScopedCall() { current_call = saved_; }
  ScopedCall(const ScopedCall&) = delete;
  ScopedCall& operator=(const ScopedCall&) = delete;

 private:
  const CallContext* saved_;
};
}  // namespace

const CallContext& this_call() noexcept {
  static const CallContext empty;
  return current_call ? *current_call : empty;
}

DispatchTable::DispatchTable(std::initializer_list<const Service*> services) {
  for (const Service* s : services) add(*s).value();
}

Result<void> DispatchTable::add(const Service& service) {
  for (const Service* s : services_) {
    if (s == &service) return {};  // already served: one route, however often added
  }
  for (std::size_t i = 0; i < service.method_count; ++i) {
    if (by_path_.count(service.methods[i].path)) {
      return Error(Code::already_exists,
                   std::string("method path ") + service.methods[i].path +
                       " is already in the dispatch table");
    }
  }
  services_.push_back(&service);
  for (std::size_t i = 0; i < service.method_count; ++i) {
    const Method& m = service.methods[i];
    by_path_.emplace(m.path, &m);
    auto [it, inserted] = by_name_.emplace(m.name, &m);
    if (!inserted) it->second = nullptr;  // ambiguous: only the qualified name works
    if (service.package[0] != '\0') {
      auto& q = owned_names_.emplace_back(
          std::make_unique<const std::string>(std::string(service.package) + "." + m.name));
      by_name_[*q] = &m;
    }
  }
  if (service.companion != nullptr) return add(*service.companion);
  return {};
}

const Method* DispatchTable::find(std::string_view path) const noexcept {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : it->second;
}

const Method* DispatchTable::find_function(std::string_view name) const noexcept {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const Service* DispatchTable::service_of(const Method& method) const noexcept {
  // Tables hold a handful of services: a scan beats a map on the hot path.
  const std::less<const Method*> before;
  for (const Service* s : services_) {
    if (!before(&method, s->methods) && before(&method, s->methods + s->method_count)) return s;
  }
  return nullptr;
}

Result<std::string> DispatchTable::invoke(const Method& method, std::string_view request,
                                          const CallContext& context) const {
  const Service* service = service_of(method);
  if (service == nullptr) {
    return Error(Code::internal, std::string("method ") + method.path +
                                     " is not in the dispatch table running it");
  }
  ScopedCall scope(context);
  try {
    return method.handler(MethodCall{request, context, *this, *service});
  } catch (...) {
    return mapped_current_exception();
  }
}

Result<std::string> DispatchTable::invoke_run(const Method& method, const Service& route,
                                              std::string_view run_request, const CallContext& context) const {
  if (method.run == nullptr || service_of(method) == nullptr) {
    return Error(Code::internal, std::string("method ") + method.path +
                                     " has no Run entry in the dispatch table running it");
  }
  ScopedCall scope(context);
  try {
    return method.run(MethodCall{run_request, context, *this, route});
  } catch (...) {
    return mapped_current_exception();
  }
}

Error DispatchTable::mapped_current_exception() const noexcept {
  Error error = error_from_current_exception();
  for (const ExceptionCode& mapping : exception_codes_) {
    if (mapping.matches()) return Error(mapping.code, error.message(), error.details());
  }
  return error;
}

}  // namespace dispatch
