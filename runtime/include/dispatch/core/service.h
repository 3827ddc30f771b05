// The server half's data model: a generated Service lists its Methods (path,
// message names, and a handler that decodes, calls the user's function and
// encodes), and a DispatchTable routes a method path to its Method without
// allocating. Transports (in-process, HTTP) and the scheduler's Run route all
// go through DispatchTable::invoke(), so the exception-to-code mapping lives
// in one place.
//
// Not for: I/O. Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dispatch/core/call_headers.h"
#include "dispatch/core/logger.h"
#include "dispatch/core/result.h"
#include "dispatch/core/trace_context.h"

namespace dispatch {

// What a running function may know about the call it serves; see this_call().
struct CallContext {
  // When the caller stops waiting (Connect-Timeout-Ms), if it said.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Durable calls only: the scheduler's dispatch ID and the 1-based attempt
  // number, so a function can deduplicate its side effects. Empty/0 otherwise.
  std::string dispatch_id;
  uint32_t attempt = 0;
  // Durable calls only: the call that made this one (empty for a call a
  // client dispatched) and the first call of its tree (its own ID then).
  std::string parent_dispatch_id;
  std::string root_dispatch_id;
  // Where the server running the call logs (ServerOptions::logger); null
  // when nothing serves it (in process). Built-in routes log through it.
  const Logger* logger = nullptr;
  // The function being called ("shop.add"), for log lines; empty when
  // nothing serves the call. Points into the server's routing data.
  std::string_view function;
  // W3C trace context: the caller's traceparent continued with a span of
  // this call, or a new trace when the caller sent none (or a malformed
  // one). HttpClient sends it on from calls made inside the function, and
  // the scheduler keeps it with the durable calls dispatched from here.
  TraceContext trace;
  // The request's headers (a Connect call's) or metadata (a gRPC or gRPC-Web
  // call's), valid while the call runs; see request_header(). Null when the
  // call came with none: a durable call's Run (its headers are the
  // scheduler's), an in-process call without CallOptions::headers.
  const RequestHeaders* request_headers = nullptr;
  // Where the function adds headers to its answer (add_response_header());
  // null when the answer carries none (a durable call's result goes to the
  // scheduler).
  ResponseHeaders* response_headers = nullptr;

  bool expired() const noexcept {
    return deadline && std::chrono::steady_clock::now() >= *deadline;
  }
};

// The context of the call the current thread is serving, for functions whose
// plain signatures have no room for it. Outside a call: an empty context.
// (Thread-local by necessity: a [[dispatch::function]] is a plain function.)
const CallContext& this_call() noexcept;

class DispatchTable;
struct Service;
namespace stateful {
struct StatefulFunction;  // dispatch/stateful/endpoint.h
}  // namespace stateful

// What a method's handler is given: the request and everything it may need
// beside it, so that no handler has to find it elsewhere.
struct MethodCall {
  std::string_view request;  // the request message's bytes
  // The call's context; also this_call() while the handler runs.
  const CallContext& context;
  // The table running the call: built-in routes such as the Dispatch
  // protocol's Run reach the functions beside them through it.
  const DispatchTable& table;
  // The service the method belongs to: a built-in route whose service
  // carries its owner (a type derived from Service) reaches it through this.
  const Service& service;
};

// How a function takes CloudEvents (a [[dispatch::event]] function; see
// docs/events.md): what the events layer needs to turn an event into the
// method's request and its response into a reply. The request and response
// are the method's own messages, so the function is a Connect method too.
struct EventBinding {
  // The event type the function declared; "" takes any type (a service's
  // one event function, delivered to by path).
  const char* type;
  // The type of the reply event when the function returns data; "" means
  // the incoming event's type with ".reply" appended.
  const char* reply_type;
  // The request field the event's data decodes into (its typed data
  // parameter), 0 for none.
  std::uint32_t data_field;
  // The request field that receives the whole event (a `dispatch::CloudEvent`
  // parameter, bytes of the CloudEvents protobuf format), 0 for none.
  std::uint32_t event_field;
  // What the response's field 1 is: nothing (202 without a reply), the
  // reply's data, or a whole reply event (CloudEvents protobuf format; absent:
  // no reply).
  enum class Reply : std::uint8_t { none, data, event };
  Reply reply;
};

// One function. All strings point to static storage.
struct Method {
  const char* name;           // remote name, e.g. "add" or "charge_v2"
  const char* path;           // "/shop.ApiService/add"
  const char* request_type;   // full proto name, "shop.AddRequest"
  const char* response_type;  // "shop.AddResponse"
  // Decodes the request, calls the function, returns the encoded response,
  // or the error: a request that does not decode is invalid_argument. What
  // the user's function throws escapes, and DispatchTable::invoke() maps it.
  Result<std::string> (*handler)(const MethodCall& call);
  // Set for a function that takes CloudEvents; null for every other one.
  const EventBinding* event = nullptr;
  // A function that speaks the Dispatch protocol itself (a workflow, which
  // answers Poll and is resumed with its calls' results): the protocol's Run
  // route hands it the whole dispatch.sdk.v1.RunRequest as the request and
  // sends back what it returns, a RunResponse. Null for a plain function,
  // whose Run the route answers by calling `handler`. Its MethodCall::service
  // is then the Run route's service.
  Result<std::string> (*run)(const MethodCall& call) = nullptr;
  // A function whose calls may wait a long time for something that is not
  // CPU work (the scheduler's Get with wait_ms sleeps until a call ends): a
  // server runs its calls on a pool of their own (ServerOptions::
  // waiting_threads), never on an I/O thread or a worker, so that calls
  // waiting there cannot hold up the other calls.
  bool waits = false;
  // A route that runs another function of its table, named in its request
  // (the Dispatch protocol's Run): that function, read from the binary
  // request without decoding the rest (nullptr when it names none this
  // table has, or the bytes are not one). A server places and times such a
  // call as the function it runs, so one slow function does not send every
  // call of the route to the workers. Null for every other function.
  const Method* (*runs)(const DispatchTable& table, std::string_view request) = nullptr;
};

// One service: one per annotated header, or a built-in one (the Dispatch
// protocol's Run, the scheduler's API). Held by pointer: it outlives every
// table it is added to.
struct Service {
  const char* package;        // "shop" (may be empty)
  const char* name;           // "ApiService"
  const Method* methods;
  std::size_t method_count;
  // Serialized google.protobuf.FileDescriptorProto of the emitted .proto;
  // its dependencies are protobuf's well-known types only.
  std::string_view file_descriptor;
  // A built-in service every table serving this one needs beside it (for a
  // generated service: the Dispatch protocol's Run route, so that any server
  // can be driven by a scheduler without opting in). DispatchTable::add()
  // adds it too; it is one route however many services bring it.
  const Service* companion = nullptr;
  // The header's stateful functions (docs/stateful.md), if it has any: the
  // companion is then the StateFun route (dispatch/stateful/context.h),
  // one route that serves those of every service in the table. This layer
  // only carries them.
  const stateful::StatefulFunction* stateful_functions = nullptr;
  std::size_t stateful_function_count = 0;
};

class DispatchTable {
 public:
  DispatchTable() = default;
  DispatchTable(std::initializer_list<const Service*> services);
  DispatchTable(const DispatchTable&) = delete;
  DispatchTable& operator=(const DispatchTable&) = delete;

  // Adds every method of `service`, then its companion (if any). Adding a
  // service already in the table (the same object) changes nothing, so a
  // built-in route brought by several services, or also added by hand, is
  // one route. A path already served by another service is a programmer
  // error reported as Error(already_exists) naming the path.
  Result<void> add(const Service& service);

  // The method serving `path`, or nullptr. Does not allocate.
  const Method* find(std::string_view path) const noexcept;
  // By remote name: "add" when unique across services, or "<package>.add".
  const Method* find_function(std::string_view name) const noexcept;

  // Runs `method` (one this table found) on `request` with `context`
  // installed as this_call(): exceptions that escape become errors as
  // error_from_current_exception() says, after the mappings of
  // map_exception(). A method of no service in this table is internal.
  Result<std::string> invoke(const Method& method, std::string_view request,
                             const CallContext& context = {}) const;
  // The same for a Run of `method` (one with a `run` entry), on behalf of
  // the built-in service `route` that received it: `run_request` is the
  // whole RunRequest, the result a RunResponse. Exceptions are mapped as
  // invoke() maps them.
  Result<std::string> invoke_run(const Method& method, const Service& route, std::string_view run_request,
                                 const CallContext& context) const;

  const std::vector<const Service*>& services() const noexcept { return services_; }

  // Exceptions of type E (or derived from it) escaping a function become
  // `code`, ahead of error_from_current_exception()'s defaults; the message is
  // the exception's what(). Checked in registration order, first match wins:
  // register specific types before their bases. Owned by this table (no
  // global registry), e.g. table.map_exception<PaymentDeclined>(Code::failed_precondition).
  template <typename E>
  void map_exception(Code code) {
    exception_codes_.push_back({code, &current_exception_is<E>});
  }

 private:
  template <typename E>
  static bool current_exception_is() noexcept {
    try {
      throw;
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  }
  const Service* service_of(const Method& method) const noexcept;
  // The current exception as an Error, after the mappings of map_exception().
  // Only inside a catch block.
  Error mapped_current_exception() const noexcept;

  struct ExceptionCode {
    Code code;
    bool (*matches)() noexcept;  // called inside a catch block
  };
  std::vector<ExceptionCode> exception_codes_;
  std::vector<const Service*> services_;
  std::unordered_map<std::string_view, const Method*> by_path_;
  // Short and "<package>.<name>" spellings; an ambiguous short name maps to
  // nullptr. Keys point into methods' static strings or into owned_names_.
  std::unordered_map<std::string_view, const Method*> by_name_;
  std::vector<std::unique_ptr<const std::string>> owned_names_;
};

}  // namespace dispatch
