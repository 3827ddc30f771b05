// What the typed proxies dispatch-gen generates for [[dispatch::faas("name")]]
// declarations use beside Gateway (docs/deploy.md, "Typed proxies"): the
// protobuf JSON mapping of one generated header's messages, for struct
// bodies (sent as application/json) and outputs.
//
// Not for: calling a gateway (gateway.h), or JSON of types that are not
// messages of a generated .proto. Public header: compiles as C++17 and
// C++20.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "dispatch/core/result.h"
#include "dispatch/faas/gateway.h"

namespace dispatch::faas {

// The messages of one generated .proto (its serialized FileDescriptorProto,
// <stem>_file_descriptor()) as JSON. Immutable once made: one may serve
// every thread.
class MessageJson {
 public:
  // invalid_argument when the descriptor does not parse or build.
  static Result<MessageJson> create(std::string_view file_descriptor);
  MessageJson(MessageJson&&) noexcept;
  MessageJson& operator=(MessageJson&&) noexcept;
  ~MessageJson();

  // The message `type` ("math.FibRequest") in its binary form, as JSON:
  // field names as the C++ struct spells them, every field printed (zeros
  // too, for functions that expect each one), and 64-bit integers as JSON
  // strings (protobuf's mapping). internal when `binary` is not one.
  Result<std::string> to_json(std::string_view type, std::string_view binary) const;

  // Function `function`'s output read as the message `type`, in its binary
  // form. JSON field names as declared or lowerCamelCase; unknown fields
  // are ignored (a function may say more than the proxy reads). An output
  // that is not such JSON (an HTML page, text, a wrong field type) is
  // internal, naming the function, the message, the content type and the
  // start of the output.
  Result<std::string> output_to_binary(std::string_view function, std::string_view type,
                                       const Output& output) const;

 private:
  struct State;
  explicit MessageJson(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace dispatch::faas
