// The CloudEvents route: reading events from a request, routing them to
// [[dispatch::event]] functions, mapping data to and from their messages,
// and the answers of the Knative Eventing data plane (see the header).
#include "dispatch/events/event_route.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <unordered_map>

#include "dispatch/events/http_binding.h"
#include "dispatch/events/json_format.h"
#include "dispatch/wire/cloud_event.h"
#include "dispatch/wire/wire.h"
#include "transport/connect.h"

namespace dispatch::events {
namespace {

namespace pb = google::protobuf;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using FieldType = pb::FieldDescriptor::Type;

// One event function and what mapping its events needs.
struct Target {
  const Method* method = nullptr;
  const EventBinding* binding = nullptr;
  std::string log_name;  // "shop.on_order"
  std::string reply_source;  // a reply's source: EventOptions::reply_source, else the method's path
  const connect::JsonCodec* codec = nullptr;  // null: the descriptor did not build
  std::string codec_problem;
  const pb::FieldDescriptor* data_field = nullptr;    // in the request
  const pb::FieldDescriptor* result_field = nullptr;  // the response's field 1
};

// Why an event was refused before its function ran, as an HTTP status.
int refusal_status(Code code) {
  switch (code) {
    case Code::invalid_argument: return 400;
    case Code::not_found: return 404;
    case Code::unimplemented: return 415;
    default: return code_to_http_status(code);
  }
}

Error unsupported(std::string message) { return Error(Code::unimplemented, std::move(message)); }

bool single(const pb::FieldDescriptor* f) { return f != nullptr && !f->is_repeated(); }

bool is_protobuf_media(std::string_view media) {
  return media == "application/protobuf" || media == "application/x-protobuf" || media == "application/proto";
}

void append_len_field(std::string& out, std::uint32_t number, std::string_view bytes) {
  std::uint8_t buf[16];
  std::uint8_t* p = pb::io::CodedOutputStream::WriteVarint32ToArray(number << 3 | 2, buf);
  p = pb::io::CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(bytes.size()), p);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(p - buf));
  out.append(bytes.data(), bytes.size());
}

// The bytes of the last length-delimited field 1 of `message`, nullopt when
// there is none (or the bytes do not parse, which the function's own
// encoder never writes).
std::optional<std::string_view> field_one(std::string_view message) {
  pb::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(message.data()),
                              static_cast<int>(message.size()));
  std::optional<std::string_view> found;
  while (std::uint32_t tag = in.ReadTag()) {
    if (tag == (1u << 3 | 2u)) {
      std::uint32_t n;
      const void* data;
      int size;
      if (!in.ReadVarint32(&n) || !in.GetDirectBufferPointer(&data, &size) ||
          static_cast<std::uint32_t>(size) < n) {
        return std::nullopt;
      }
      found = std::string_view(static_cast<const char*>(data), n);
      in.Skip(static_cast<int>(n));
    } else if (!pb::internal::WireFormatLite::SkipField(&in, tag)) {
      return std::nullopt;
    }
  }
  return found;
}

std::string new_event_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uint64_t a = random(), b = random();
  // A version 4 UUID: 122 random bits, the version and variant in place.
  a = (a & ~0xF000ULL) | 0x4000ULL;
  b = (b & ~(0xCULL << 60)) | (0x8ULL << 60);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(36, '-');
  int bit = 64;
  std::size_t i = 0;
  // Every event's reply has one: hex by hand, no printf formatting.
  auto put = [&](std::uint64_t v, int digits) {
    for (int d = 0; d < digits; ++d) {
      bit -= 4;
      id[i++] = kHex[(v >> bit) & 0xF];
    }
  };
  put(a, 8), ++i, put(a, 4), ++i, put(a, 4);
  bit = 64;
  ++i, put(b, 4), ++i, put(b, 12);
  return id;
}

// The media type of `content_type` as media_type() gives it (no
// parameters, trimmed, lower-case) without copying it when it is already
// so; else lowered into `storage`.
std::string_view media_of(std::string_view content_type, std::string& storage) {
  const std::string_view m = media_type_as_written(content_type);
  for (char c : m) {
    if (c >= 'A' && c <= 'Z') {
      storage = media_type(content_type);
      return storage;
    }
  }
  return m;
}

// `json` without the whitespace JSON allows around a value.
std::string_view trim_json(std::string_view json) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!json.empty() && space(json.front())) json.remove_prefix(1);
  while (!json.empty() && space(json.back())) json.remove_suffix(1);
  return json;
}

std::string format_ms(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", std::chrono::duration<double, std::milli>(d).count());
  return buf;
}

std::string describe(const pb::FieldDescriptor* f) {
  if (f->is_map()) return "a map";
  if (f->is_repeated()) return "a list";
  if (f->type() == FieldType::TYPE_MESSAGE) return "message " + f->message_type()->full_name();
  return f->type_name();
}

// What one delivery came to: an error (with the status to answer), or done
// with or without a reply.
struct Outcome {
  int status = 202;
  std::optional<Error> error;
  std::optional<CloudEvent> reply;
};

class EventRoute final : public RequestRoute {
 public:
  EventRoute(const DispatchTable& table, EventOptions options) : table_(table), options_(std::move(options)) {}

  Result<void> build() {
    for (const Service* service : table_.services()) {
      const connect::JsonCodec* codec = nullptr;
      std::string problem;
      bool tried = false;
      for (std::size_t i = 0; i < service->method_count; ++i) {
        const Method& m = service->methods[i];
        if (m.event == nullptr) continue;
        if (!tried) {
          tried = true;
          auto created = connect::JsonCodec::create(service->file_descriptor);
          if (created.ok()) {
            codec = created->get();
            codecs_.push_back(std::move(*created));
          } else {
            problem = created.error().message();
          }
        }
        auto t = std::make_unique<Target>();
        t->method = &m;
        t->binding = m.event;
        t->log_name = std::string(service->package) + (service->package[0] ? "." : "") + m.name;
        t->reply_source = options_.reply_source.empty() ? std::string(m.path) : options_.reply_source;
        t->codec = codec;
        t->codec_problem = problem;
        if (codec != nullptr) {
          const pb::Descriptor* request = codec->pool().FindMessageTypeByName(m.request_type);
          const pb::Descriptor* response = codec->pool().FindMessageTypeByName(m.response_type);
          if (request && m.event->data_field) t->data_field = request->FindFieldByNumber(int(m.event->data_field));
          if (response) t->result_field = response->FindFieldByNumber(1);
        }
        by_path_.emplace(m.path, t.get());
        const std::string_view type = m.event->type;
        auto& slot = type.empty() ? any_type_ : by_type_[type];
        if (slot != nullptr) {
          return Error(Code::failed_precondition,
                       (type.empty() ? std::string("functions ") + slot->log_name + " and " + t->log_name +
                                           " both take events of any type"
                                     : "functions " + slot->log_name + " and " + t->log_name +
                                           " both take events of type '" + std::string(type) + "'") +
                           "; an event needs exactly one destination (serve them from different servers)");
        }
        slot = t.get();
        targets_.push_back(std::move(t));
      }
    }
    return {};
  }

  std::size_t size() const noexcept { return targets_.size(); }

  bool takes(const RequestInfo& request) const override {
    if (request.path != "/" && by_path_.find(request.path) == by_path_.end()) return false;
    if (content_mode(request.content_type) != ContentMode::binary) return true;
    bool ce = false;
    request.for_each_header([&ce](std::string_view name, std::string_view) {
      ce = ce || (name.size() > 3 && (name[0] == 'c' || name[0] == 'C') && (name[1] == 'e' || name[1] == 'E') &&
                  name[2] == '-');
    });
    return ce;
  }

  const Method* function_for(const RequestInfo& request) const override {
    if (auto it = by_path_.find(request.path); it != by_path_.end()) return it->second->method;
    if (content_mode(request.content_type) == ContentMode::binary) {
      if (auto type = request.header("ce-type")) {
        // A plain value is its own decoding (its UTF-8 is checked when the
        // event is read); only a quoted or escaped one is decoded here.
        if (type->find_first_of("\"%") == std::string_view::npos) {
          if (const Target* t = route(*type)) return t->method;
        } else if (auto decoded = decode_header_value(*type); decoded.ok()) {
          if (const Target* t = route(*decoded)) return t->method;
        }
      }
      return nullptr;
    }
    return targets_.size() == 1 ? targets_.front()->method : nullptr;
  }

  HttpAnswer answer(const RequestInfo& request, const CallContext& context) const override {
    try {
      return answer_or_throw(request, context);
    } catch (...) {
      const Error e = error_from_current_exception();
      return error_answer(500, e);
    }
  }

 private:
  // The function for an event of `type` arriving at "/".
  const Target* route(std::string_view type) const {
    if (auto it = by_type_.find(type); it != by_type_.end()) return it->second;
    return any_type_;
  }

  static HttpAnswer error_answer(int status, const Error& error) {
    HttpAnswer a;
    a.status = status;
    a.headers.emplace_back("Content-Type", std::string(connect::kJsonContentType));
    a.body = connect::error_to_json(error);
    return a;
  }

  static HttpAnswer refuse(const RequestInfo& request, int status, const Error& error, const Logger& log) {
    if (log.enabled(LogLevel::warn)) {
      log.log(LogLevel::warn, "rejected event " + std::string(request.method) + " " +
                                  std::string(request.path.substr(0, 200)) + ": " + std::to_string(status) + " " +
                                  error.what());
    }
    HttpAnswer a = error_answer(status, error);
    if (status == 405) a.headers.emplace_back("Allow", "POST");
    if (status == 415) a.headers.emplace_back("Accept-Post", std::string(kStructuredJson) + ", " + std::string(kBatchJson));
    return a;
  }

  HttpAnswer answer_or_throw(const RequestInfo& request, const CallContext& context) const {
    const Logger& log = context.logger != nullptr ? *context.logger : quiet_;
    if (request.method != "POST") {
      return refuse(request, 405,
                    Error(Code::unimplemented, std::string(request.method) + " " + std::string(request.path) +
                                                   ": events are delivered with POST"), log);
    }
    const ContentMode mode = content_mode(request.content_type);
    if (mode != ContentMode::binary) {
      const std::string media = media_type(request.content_type);
      const std::string_view wanted = mode == ContentMode::structured ? kStructuredJson : kBatchJson;
      if (media != wanted) {
        return refuse(request, 415,
                      unsupported("event format '" + media + "' is not supported; send " + std::string(wanted) +
                                  " or binary mode"), log);
      }
    }
    if (mode == ContentMode::batch) {
      auto batch = from_json_batch(request.body);
      if (!batch.ok()) return refuse(request, 400, batch.error(), log);
      return answer_batch(request, *batch, context, log);
    }
    // One event (binary or structured mode): no lists of events, targets
    // and replies, and the reply's strings move into the answer.
    Result<CloudEvent> event = mode == ContentMode::binary ? read_binary(request) : from_json(request.body);
    if (!event.ok()) return refuse(request, 400, event.error(), log);
    const Target* t = target_for(request.path, event->type);
    if (t == nullptr) {
      return refuse(request, 404, Error(Code::not_found, "no function takes events of type '" + event->type + "'"),
                    log);
    }
    auto message = request_of(*event, *t);
    Outcome outcome = message.ok() ? deliver(*event, *t, *message, context, log) : not_run(std::move(message).error());
    HttpAnswer a;
    if (outcome.error) {
      a = outcome.status == 400 || outcome.status == 415 ? refuse(request, outcome.status, *outcome.error, log)
                                                         : error_answer(outcome.status, *outcome.error);
    } else if (!outcome.reply) {
      a.status = 202;
    } else if (mode == ContentMode::structured) {
      a.status = 200;
      a.headers.emplace_back("Content-Type", std::string(kStructuredJson) + "; charset=utf-8");
      a.body = to_json(*outcome.reply);
    } else {
      a.status = 200;
      a.body = std::move(outcome.reply->data).value_or(std::string());
      a.headers = binary_headers(std::move(*outcome.reply));
    }
    a.function = t->method;
    return a;
  }

  static Result<CloudEvent> read_binary(const RequestInfo& request) {
    HeaderViews headers;
    headers.reserve(16);
    request.for_each_header([&headers](std::string_view n, std::string_view v) { headers.emplace_back(n, v); });
    return from_binary(headers, request.body);
  }

  // The function for an event of `type` sent to `path`: the one the path
  // names, else the one routing by type finds; nullptr for none.
  const Target* target_for(std::string_view path, std::string_view type) const {
    if (auto it = by_path_.find(path); it != by_path_.end()) return it->second;
    return route(type);
  }

  HttpAnswer answer_batch(const RequestInfo& request, const std::vector<CloudEvent>& events,
                          const CallContext& context, const Logger& log) const {
    // Every event of a batch finds its function, and its data the
    // function's request, before any runs: a batch refused (400, 404, 415,
    // not retried as a whole) has run nothing, so none of its events ran
    // with their replies thrown away.
    std::vector<const Target*> targets;
    std::vector<std::string> messages;
    targets.reserve(events.size());
    messages.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      const Target* t = target_for(request.path, events[i].type);
      if (t == nullptr) {
        Error e(Code::not_found, "no function takes events of type '" + events[i].type + "'");
        return refuse(request, 404, e.with_context("batch event " + std::to_string(i)), log);
      }
      auto message = request_of(events[i], *t);
      if (!message.ok()) {
        const Outcome no = not_run(std::move(message).error());
        return refuse(request, no.status, no.error->with_context("batch event " + std::to_string(i)), log);
      }
      targets.push_back(t);
      messages.push_back(std::move(*message));
    }
    std::vector<CloudEvent> replies;
    for (std::size_t i = 0; i < events.size(); ++i) {
      Outcome outcome = deliver(events[i], *targets[i], messages[i], context, log);
      if (outcome.error) {
        const Error e = outcome.error->with_context("batch event " + std::to_string(i));
        // A refusal is logged here; a failed call has had its executing line.
        if (outcome.status == 400 || outcome.status == 415) return refuse(request, outcome.status, e, log);
        return error_answer(outcome.status, e);
      }
      if (outcome.reply) replies.push_back(std::move(*outcome.reply));
    }
    HttpAnswer a;
    // The server's quick/slow mark needs one function; a batch sent to one
    // function's path has it.
    if (auto it = by_path_.find(request.path); it != by_path_.end()) {
      a.function = it->second->method;
    } else if (targets_.size() == 1) {
      a.function = targets_.front()->method;
    }
    if (replies.empty()) {
      a.status = 202;
      return a;
    }
    a.status = 200;
    a.headers.emplace_back("Content-Type", std::string(kBatchJson) + "; charset=utf-8");
    a.body = to_json_batch(replies);
    return a;
  }

  // The request message for `event` to `t`: the data in its data field, the
  // event in its event field.
  // `media`: the media type of the event's datacontenttype, "" without one.
  Result<std::string> request_for(const CloudEvent& event, const Target& t, std::string_view media) const {
    std::string out;
    const EventBinding& b = *t.binding;
    if (b.data_field != 0 && event.data) {
      if (t.codec == nullptr) {
        return Error(Code::internal, t.log_name + "'s descriptor does not build: " + t.codec_problem);
      }
      const pb::FieldDescriptor* f = t.data_field;
      if (f == nullptr) return Error(Code::internal, t.log_name + ": no data field in " + t.method->request_type);
      if (single(f) && f->type() == FieldType::TYPE_BYTES) {
        append_len_field(out, b.data_field, *event.data);
      } else if (is_json_media(media) && single(f) && f->type() == FieldType::TYPE_MESSAGE) {
        // A struct parameter: the data parsed as the field's own message,
        // in one pass (no copy wrapped in the request's braces, and no
        // strictness pass first: nothing in the data can reach another
        // field of the request). A failure is told apart afterwards.
        const std::string_view json = trim_json(*event.data);
        if (json != "null") {  // null: the field left out, as in the request's JSON
          auto binary = t.codec->to_binary(f->message_type()->full_name(), json);
          if (!binary.ok()) {
            if (!Json::accept(*event.data)) return Error(Code::invalid_argument, "the event's data is not valid JSON");
            return Error(Code::invalid_argument, "the event's data does not decode into " + describe(f) +
                                                     " (parameter '" + f->name() + "' of " + t.log_name +
                                                     "): " + binary.error().message());
          }
          append_len_field(out, b.data_field, *binary);
        }
      } else if (is_json_media(media)) {
        if (!Json::accept(*event.data)) return Error(Code::invalid_argument, "the event's data is not valid JSON");
        std::string wrapped;
        wrapped.reserve(event.data->size() + f->json_name().size() + 8);
        wrapped.append("{\"").append(f->json_name()).append("\":").append(*event.data).append("}");
        auto binary = t.codec->to_binary(t.method->request_type, wrapped);
        if (!binary.ok()) {
          return Error(Code::invalid_argument, "the event's data does not decode into " + describe(f) +
                                                   " (parameter '" + f->name() + "' of " + t.log_name +
                                                   "): " + binary.error().message());
        }
        out = std::move(*binary);
      } else if (is_protobuf_media(media)) {
        if (!single(f) || f->type() != FieldType::TYPE_MESSAGE) {
          return unsupported("protobuf data (" + std::string(media) + ") needs a struct parameter; " + t.log_name + " takes " +
                             describe(f) + ": send application/json");
        }
        append_len_field(out, b.data_field, *event.data);
      } else if (media.substr(0, 5) == "text/" && single(f) && f->type() == FieldType::TYPE_STRING) {
        if (!wire::is_valid_utf8(*event.data)) {
          return Error(Code::invalid_argument, "the event's text data is not valid UTF-8");
        }
        append_len_field(out, b.data_field, *event.data);
      } else {
        return unsupported(
            (media.empty() ? std::string("data without a datacontenttype") : "datacontenttype '" + std::string(media) + "'") +
            " cannot be read as " + describe(f) + " (parameter '" + f->name() + "' of " + t.log_name +
            "); send JSON" + (single(f) && f->type() == FieldType::TYPE_MESSAGE ? " or protobuf" : ""));
      }
    }
    if (b.event_field != 0) {
      if (b.data_field != 0 && event.data) {
        CloudEvent attributes = event;
        attributes.data.reset();
        append_len_field(out, b.event_field, wire::encode_cloud_event(attributes));
      } else {
        append_len_field(out, b.event_field, wire::encode_cloud_event(event));
      }
    }
    return out;
  }

  // The reply event's data from the function's response.
  Result<std::pair<std::string, std::string>> reply_data(std::string_view response, const Target& t,
                                                         std::string_view incoming_media) const {
    const pb::FieldDescriptor* f = t.result_field;
    if (f == nullptr || t.codec == nullptr) {
      return Error(Code::internal, t.log_name + ": no result field in " + t.method->response_type);
    }
    if (single(f) && f->type() == FieldType::TYPE_BYTES) {
      return std::make_pair(std::string("application/octet-stream"), std::string(field_one(response).value_or("")));
    }
    if (single(f) && f->type() == FieldType::TYPE_STRING && incoming_media.substr(0, 5) == "text/") {
      return std::make_pair(std::string("text/plain; charset=utf-8"), std::string(field_one(response).value_or("")));
    }
    if (single(f) && f->type() == FieldType::TYPE_MESSAGE && is_protobuf_media(incoming_media)) {
      return std::make_pair(std::string("application/protobuf"), std::string(field_one(response).value_or("")));
    }
    if (single(f) && f->type() == FieldType::TYPE_MESSAGE) {
      // The result's own message printed on its own is the value the whole
      // response would hold under the field's name: no second pass through
      // a JSON document to take it out. (An absent result goes the long way,
      // which says what it is.)
      if (const auto bytes = field_one(response)) {
        auto json = t.codec->to_json(f->message_type()->full_name(), *bytes, /*print_defaults=*/true);
        if (!json.ok()) return std::move(json).error();
        return std::make_pair(std::string("application/json"), std::move(*json));
      }
    }
    auto json = t.codec->to_json(t.method->response_type, response, /*print_defaults=*/true);
    if (!json.ok()) return std::move(json).error();
    const Json parsed = Json::parse(*json, nullptr, /*allow_exceptions=*/false);
    std::string data = "null";
    if (parsed.is_object()) {
      auto it = parsed.find(f->json_name());
      if (it != parsed.end()) data = it->dump();
    }
    return std::make_pair(std::string("application/json"), std::move(data));
  }

  std::string reply_type_for(const CloudEvent& event, const Target& t) const {
    return t.binding->reply_type[0] != '\0' ? std::string(t.binding->reply_type) : event.type + ".reply";
  }

  // The request message of `event` for `t` (request_for() by the event's
  // datacontenttype), or why the event cannot be one.
  Result<std::string> request_of(const CloudEvent& event, const Target& t) const {
    std::string lowered;
    return request_for(event, t, event.datacontenttype ? media_of(*event.datacontenttype, lowered) : "");
  }

  // A delivery refused before its function ran (400, 415).
  static Outcome not_run(Error error) {
    Outcome outcome;
    outcome.status = refusal_status(error.code());
    outcome.error = std::move(error);
    return outcome;
  }

  // Runs `t` on `request` (request_of() the event) and makes the reply.
  Outcome deliver(const CloudEvent& event, const Target& t, const std::string& request, const CallContext& context,
                  const Logger& log) const {
    Outcome outcome;
    std::string lowered;
    const std::string_view media = event.datacontenttype ? media_of(*event.datacontenttype, lowered) : "";
    const auto started = Clock::now();
    auto result = table_.invoke(*t.method, request, context);
    const auto elapsed = Clock::now() - started;
    // The delivery's line says how it ended: a function that returned but
    // whose reply cannot be sent (an invalid event) is a 500, not "ok".
    auto logged = [&](Outcome&& done) {
      const Code code = done.error ? done.error->code() : Code::ok;
      const LogLevel level = code == Code::internal ? LogLevel::warn : LogLevel::info;
      if (log.enabled(level)) {
        std::string line = "event " + event.type + " (" + event.id + ") -> " + t.log_name + ": " +
                           std::string(code_name(code)) + " in " + format_ms(elapsed);
        if (done.error) line += ": " + done.error->message();
        log.log(level, line);
      }
      return std::move(done);
    };
    if (!result.ok()) {
      outcome.status = code_to_http_status(result.error().code());
      outcome.error = std::move(result).error();
      return logged(std::move(outcome));
    }
    switch (t.binding->reply) {
      case EventBinding::Reply::none:
        return logged(std::move(outcome));
      case EventBinding::Reply::data: {
        auto data = reply_data(*result, t, media);
        if (!data.ok()) {
          outcome.status = 500;
          outcome.error = std::move(data).error();
          return logged(std::move(outcome));
        }
        CloudEvent reply;
        reply.id = new_event_id();
        reply.source = t.reply_source;
        reply.type = reply_type_for(event, t);
        reply.datacontenttype = std::move(data->first);
        reply.data = std::move(data->second);
        outcome.status = 200;
        outcome.reply = std::move(reply);
        return logged(std::move(outcome));
      }
      case EventBinding::Reply::event: {
        const auto bytes = field_one(*result);
        if (!bytes) return logged(std::move(outcome));  // std::optional<CloudEvent> left empty: no reply
        auto reply = wire::decode_cloud_event(*bytes);
        if (reply.ok()) {
          if (reply->specversion.empty()) reply->specversion = "1.0";
          if (reply->id.empty()) reply->id = new_event_id();
          if (reply->source.empty()) reply->source = t.reply_source;
          if (reply->type.empty()) reply->type = reply_type_for(event, t);
          if (auto checked = check_event(*reply); !checked.ok()) reply = std::move(checked).error();
        }
        if (!reply.ok()) {
          outcome.status = 500;
          outcome.error = Error(Code::internal, t.log_name + " returned an event that is not valid: " +
                                                    reply.error().message());
          return logged(std::move(outcome));
        }
        outcome.status = 200;
        outcome.reply = std::move(*reply);
        return logged(std::move(outcome));
      }
    }
    return logged(std::move(outcome));
  }

  const DispatchTable& table_;
  EventOptions options_;
  std::vector<std::unique_ptr<connect::JsonCodec>> codecs_;
  std::vector<std::unique_ptr<Target>> targets_;
  std::unordered_map<std::string_view, const Target*> by_path_;
  std::unordered_map<std::string_view, const Target*> by_type_;  // keys: the bindings' static strings
  const Target* any_type_ = nullptr;
  Logger quiet_{LogLevel::off};
};

}  // namespace

EventOptions EventOptions::from_env() {
  EventOptions options;
  if (const char* source = std::getenv("DISPATCH_EVENT_SOURCE"); source != nullptr) options.reply_source = source;
  return options;
}

Result<std::shared_ptr<const RequestRoute>> event_route(const DispatchTable& table, EventOptions options) {
  auto route = std::make_shared<EventRoute>(table, std::move(options));
  if (auto built = route->build(); !built.ok()) return std::move(built).error();
  return std::shared_ptr<const RequestRoute>(std::move(route));
}

std::size_t event_function_count(const DispatchTable& table) noexcept {
  std::size_t n = 0;
  for (const Service* s : table.services()) {
    for (std::size_t i = 0; i < s->method_count; ++i) n += s->methods[i].event != nullptr;
  }
  return n;
}

}  // namespace dispatch::events
