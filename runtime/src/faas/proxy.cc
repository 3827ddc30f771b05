// MessageJson: the transport's descriptor pool for a generated .proto
// (connect::JsonCodec), printed and parsed with protobuf's JSON utilities
// under the options a proxy wants (see the header).
#include "dispatch/faas/proxy.h"

#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <string>
#include <utility>

#include "transport/connect.h"

namespace dispatch::faas {
namespace {

namespace pb = google::protobuf;

// The output as a short, printable quote for an error message.
std::string excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 120)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  if (body.size() > 120) out += "...";
  return out;
}

}  // namespace

struct MessageJson::State {
  std::unique_ptr<connect::JsonCodec> codec;
  // Made once: DynamicMessageFactory::GetPrototype is thread-safe.
  pb::DynamicMessageFactory factory;
};

MessageJson::MessageJson(std::unique_ptr<State> state) : state_(std::move(state)) {}
MessageJson::MessageJson(MessageJson&&) noexcept = default;
MessageJson& MessageJson::operator=(MessageJson&&) noexcept = default;
MessageJson::~MessageJson() = default;

Result<MessageJson> MessageJson::create(std::string_view file_descriptor) {
  auto codec = connect::JsonCodec::create(file_descriptor);
  if (!codec.ok()) return std::move(codec).error();
  auto state = std::make_unique<State>();
  state->codec = std::move(*codec);
  return MessageJson(std::move(state));
}

Result<std::string> MessageJson::to_json(std::string_view type, std::string_view binary) const {
  const pb::Descriptor* d = state_->codec->pool().FindMessageTypeByName(std::string(type));
  if (d == nullptr) return Error(Code::internal, "message type '" + std::string(type) + "' is not in the descriptor");
  std::unique_ptr<pb::Message> message(state_->factory.GetPrototype(d)->New());
  if (!message->ParseFromArray(binary.data(), static_cast<int>(binary.size()))) {
    return Error(Code::internal, "the bytes given are not a " + std::string(type));
  }
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = pb::util::MessageToJsonString(*message, &json, options);
  if (!status.ok()) {
    return Error(Code::internal, "cannot print " + std::string(type) + " as JSON: " + std::string(status.message()));
  }
  return json;
}

Result<std::string> MessageJson::output_to_binary(std::string_view function, std::string_view type,
                                                  const Output& output) const {
  const pb::Descriptor* d = state_->codec->pool().FindMessageTypeByName(std::string(type));
  if (d == nullptr) return Error(Code::internal, "message type '" + std::string(type) + "' is not in the descriptor");
  std::unique_ptr<pb::Message> message(state_->factory.GetPrototype(d)->New());
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = pb::util::JsonStringToMessage(output.body, message.get(), options);
  if (!status.ok()) {
    return Error(Code::internal,
                 "function '" + std::string(function) + "' answered " + std::to_string(output.status) +
                     (output.content_type.empty() ? "" : " (" + output.content_type + ")") + " with an output that is not a " +
                     std::string(type) + " in JSON (" + std::string(status.message()) + "): '" + excerpt(output.body) +
                     "'");
  }
  std::string binary;
  message->SerializeToString(&binary);
  return binary;
}

}  // namespace dispatch::faas
