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

#include "dispatch/result.h"

namespace dispatch {

// What a running function may know about the call it serves; see this_call().
struct CallContext {
  // When the caller stops waiting (Connect-Timeout-Ms), if it said.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Durable calls only: the scheduler's dispatch ID and the 1-based attempt
  // number, so a function can deduplicate its side effects. Empty/0 otherwise.
  std::string dispatch_id;
  uint32_t attempt = 0;
  // The table running the call (set by DispatchTable::invoke), so built-in
  // routes such as the Dispatch protocol's Run can reach their siblings.
  const class DispatchTable* table = nullptr;

  bool expired() const noexcept {
    return deadline && std::chrono::steady_clock::now() >= *deadline;
  }
};

// The context of the call the current thread is serving, for functions whose
// plain signatures have no room for it. Outside a call: an empty context.
// (Thread-local by necessity: a [[dispatch::function]] is a plain function.)
const CallContext& this_call() noexcept;

// One generated function. All strings point to static storage.
struct Method {
  const char* name;           // remote name, e.g. "add" or "charge_v2"
  const char* path;           // "/shop.ApiService/add"
  const char* request_type;   // full proto name, "shop.AddRequest"
  const char* response_type;  // "shop.AddResponse"
  // Decodes `request`, calls the function, encodes into `*response`.
  // Reports failure by throwing: dispatch::Error (decoding errors are
  // invalid_argument) or whatever the user's function threw.
  void (*handler)(std::string_view request, std::string* response);
};

// One generated service: one per annotated header.
struct Service {
  const char* package;        // "shop" (may be empty)
  const char* name;           // "ApiService"
  const Method* methods;
  std::size_t method_count;
  // Serialized google.protobuf.FileDescriptorProto of the emitted .proto;
  // its dependencies are protobuf's well-known types only.
  std::string_view file_descriptor;
};

class DispatchTable {
 public:
  DispatchTable() = default;
  DispatchTable(std::initializer_list<const Service*> services);
  DispatchTable(const DispatchTable&) = delete;
  DispatchTable& operator=(const DispatchTable&) = delete;

  // Adds every method of `service`. A path already present is a programmer
  // error reported as Error(already_exists) naming the path.
  Result<void> add(const Service& service);

  // The method serving `path`, or nullptr. Does not allocate.
  const Method* find(std::string_view path) const noexcept;
  // By remote name: "add" when unique across services, or "<package>.add".
  const Method* find_function(std::string_view name) const noexcept;

  // Runs `method` on `request` with `context` installed as this_call():
  // user exceptions become errors as error_from_current_exception() says.
  Result<std::string> invoke(const Method& method, std::string_view request,
                             const CallContext& context = {}) const;

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

  // Built-in routes that serve an object (the scheduler's API serves its
  // Scheduler) find it through the table running them: one object per key,
  // held, not owned. `key` must be a static string.
  void attach(const char* key, void* object) { attachments_[key] = object; }
  void* attachment(std::string_view key) const noexcept {
    auto it = attachments_.find(key);
    return it == attachments_.end() ? nullptr : it->second;
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
  struct ExceptionCode {
    Code code;
    bool (*matches)() noexcept;  // called inside a catch block
  };
  std::vector<ExceptionCode> exception_codes_;
  std::unordered_map<std::string_view, void*> attachments_;
  std::vector<const Service*> services_;
  std::unordered_map<std::string_view, const Method*> by_path_;
  // Short and "<package>.<name>" spellings; an ambiguous short name maps to
  // nullptr. Keys point into methods' static strings or into owned_names_.
  std::unordered_map<std::string_view, const Method*> by_name_;
  std::vector<std::unique_ptr<const std::string>> owned_names_;
};

}  // namespace dispatch
