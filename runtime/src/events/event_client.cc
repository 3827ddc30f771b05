// send_event(), send_batch(): one synchronous POST each, through the
// transport's post_once() (see the header).
#include "dispatch/events/event_client.h"

#include <boost/beast/core/string.hpp>

#include <string>
#include <utility>

#include "dispatch/events/json_format.h"
#include "transport/connect.h"
#include "transport/post_once.h"
#include "transport/url.h"

namespace dispatch::events {
namespace {

namespace beast = boost::beast;

// http://host[:port][/path]; https:// is refused (see the header).
Result<transport::Url> sink_url(std::string_view url) {
  auto parsed = transport::parse_url(url, "event sink URL");
  if (parsed.ok() && parsed->tls) {
    return Error(Code::invalid_argument, "event sink URL '" + std::string(url.substr(0, 200)) +
                                             "' is https://, which this client does not speak; expected "
                                             "http://host[:port][/path]");
  }
  return parsed;
}

using Answer = transport::PostAnswer;

Result<Answer> post(std::string_view url, HeaderLines headers, std::string body, const SendOptions& options) {
  auto target = sink_url(url);
  if (!target.ok()) return std::move(target).error();
  transport::OnePost one;
  one.url = &*target;
  one.target = target->path;
  one.headers = std::move(headers);
  one.body = std::move(body);
  one.timeout = options.timeout;
  one.max_answer_bytes = options.max_reply_bytes;
  one.what = "event sink " + target->host + ":" + target->port;
  auto answer = transport::post_once(std::move(one));
  if (!answer.ok()) return std::move(answer).error();
  if (answer->status < 200 || answer->status > 299) {
    return connect::error_from_json(answer->body, answer->status)
        .with_context("event sink " + std::string(url.substr(0, 200)));
  }
  return answer;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

std::string header_of(const HeaderLines& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (equals_ignoring_case(n, name)) return v;
  }
  return {};
}

bool has_ce_header(const HeaderLines& headers) {
  for (const auto& [n, v] : headers) {
    if (n.size() > 3 && equals_ignoring_case(std::string_view(n).substr(0, 3), "ce-")) return true;
  }
  return false;
}

Error bad_reply(const Error& why) {
  return Error(Code::invalid_argument, std::string("the sink's reply is not a valid CloudEvent: ") + why.what());
}

}  // namespace

Result<std::optional<CloudEvent>> send_event(std::string_view url, const CloudEvent& event,
                                             const SendOptions& options) {
  if (auto valid = check_event(event); !valid.ok()) return std::move(valid).error();
  HeaderLines headers;
  std::string body;
  if (options.mode == ContentMode::binary) {
    headers = binary_headers(event);
    body = event.data.value_or("");
  } else if (options.mode == ContentMode::structured) {
    headers.emplace_back("Content-Type", std::string(kStructuredJson) + "; charset=utf-8");
    body = to_json(event);
  } else {
    return Error(Code::invalid_argument, "send_event() sends one event; send_batch() sends a batch");
  }
  auto answer = post(url, std::move(headers), std::move(body), options);
  if (!answer.ok()) return std::move(answer).error();
  const std::string content_type = header_of(answer->headers, "Content-Type");
  if (answer->status == 202 || answer->status == 204) return std::optional<CloudEvent>();
  switch (content_mode(content_type)) {
    case ContentMode::structured: {
      auto reply = from_json(answer->body);
      if (!reply.ok()) return bad_reply(reply.error());
      return std::optional<CloudEvent>(std::move(*reply));
    }
    case ContentMode::batch:
      return Error(Code::invalid_argument, "the sink answered one event with a batch");
    case ContentMode::binary:
      break;
  }
  if (!has_ce_header(answer->headers)) return std::optional<CloudEvent>();
  HeaderViews views;
  for (const auto& [n, v] : answer->headers) views.emplace_back(n, v);
  auto reply = from_binary(views, answer->body);
  if (!reply.ok()) return bad_reply(reply.error());
  return std::optional<CloudEvent>(std::move(*reply));
}

Result<std::vector<CloudEvent>> send_batch(std::string_view url, const std::vector<CloudEvent>& events,
                                           const SendOptions& options) {
  for (const CloudEvent& event : events) {
    if (auto valid = check_event(event); !valid.ok()) {
      return std::move(valid).error().with_context("event '" + event.id + "' of the batch");
    }
  }
  HeaderLines headers{{"Content-Type", std::string(kBatchJson) + "; charset=utf-8"}};
  auto answer = post(url, std::move(headers), to_json_batch(events), options);
  if (!answer.ok()) return std::move(answer).error();
  if (answer->status == 202 || answer->status == 204 || answer->body.empty()) return std::vector<CloudEvent>();
  if (content_mode(header_of(answer->headers, "Content-Type")) != ContentMode::batch) {
    return Error(Code::invalid_argument, "the sink answered a batch with something other than a batch");
  }
  auto replies = from_json_batch(answer->body);
  if (!replies.ok()) return bad_reply(replies.error());
  return std::move(*replies);
}

}  // namespace dispatch::events
