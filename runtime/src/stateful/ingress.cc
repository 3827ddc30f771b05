// send() to dispatchd's ingress (dispatch/stateful/ingress.h): one
// dispatch.statefun.v1.SendRequest, written and its SendResponse read with
// protobuf's coded streams (the runtime's classes of runtime.proto belong to
// the statefun_runtime layer, above this one). Field numbers are
// runtime.proto's.
#include "dispatch/stateful/ingress.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <optional>

namespace dispatch::stateful {
namespace {

using google::protobuf::internal::WireFormatLite;

std::string ingress_message(const Address& to, const TypedValue& message, const std::string& key) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream o(&stream);
    WireFormatLite::WriteString(1, to.type, &o);  // function_type
    WireFormatLite::WriteString(2, to.id, &o);    // id
    WireFormatLite::WriteString(3, message.type_name, &o);  // typename
    WireFormatLite::WriteBytes(4, message.value, &o);       // value
    if (!key.empty()) WireFormatLite::WriteString(5, key, &o);  // idempotency_key
  }
  return out;
}

}  // namespace

Result<std::uint64_t> send(Client& client, const Address& to, const TypedValue& message, const SendOptions& options) {
  std::string request;
  {
    google::protobuf::io::StringOutputStream stream(&request);
    google::protobuf::io::CodedOutputStream o(&stream);
    WireFormatLite::WriteBytes(1, ingress_message(to, message, options.idempotency_key), &o);  // messages
  }
  auto reply = client.call(kIngressSendPath, std::move(request), options.call);
  if (!reply.ok()) return std::move(reply).error();
  // SendResponse: repeated uint64 message_ids = 1, packed or not.
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(reply->data()),
                                            static_cast<int>(reply->size()));
  std::optional<std::uint64_t> id;
  auto malformed = [] { return Error(Code::internal, "dispatchd's reply to Send is not a SendResponse"); };
  while (std::uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT)) {
      std::uint64_t v = 0;
      if (!in.ReadVarint64(&v)) return malformed();
      if (!id) id = v;
    } else if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      std::uint32_t size = 0;
      if (!in.ReadVarint32(&size)) return malformed();
      auto limit = in.PushLimit(static_cast<int>(size));
      while (in.BytesUntilLimit() > 0) {
        std::uint64_t v = 0;
        if (!in.ReadVarint64(&v)) return malformed();
        if (!id) id = v;
      }
      in.PopLimit(limit);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return malformed();
    }
  }
  if (!in.ConsumedEntireMessage() || !id) return malformed();
  return *id;
}

}  // namespace dispatch::stateful
