// The rules both of HttpClient's call paths apply (client_endpoint.h).
#include "transport/client_endpoint.h"

#include <poll.h>

#include <boost/asio/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "transport/connect.h"
#include "transport/grpc_framing.h"

namespace dispatch::transport {

namespace beast = boost::beast;

Result<std::string> ClientEndpoint::reply_result(int status, std::string_view content_type,
                                                 std::string_view content_encoding, std::string reply,
                                                 const std::string& target) const {
  const beast::string_view coding(content_encoding.data(), content_encoding.size());
  if (!coding.empty() && !beast::iequals(coding, "identity")) {
    if (!beast::iequals(coding, "gzip")) {
      return Error(Code::internal, "reply from " + where() + target + " has Content-Encoding '" +
                                       std::string(content_encoding.substr(0, 100)) +
                                       "', which this client does not read (it asks for none)");
    }
    if (!reply.empty()) {
      auto plain = grpc::gzip_decompress(reply, options.max_response_bytes);
      if (!plain.ok()) {
        return Error(plain.error().code() == Code::resource_exhausted ? Code::resource_exhausted : Code::internal,
                     "reply from " + where() + target + " (Content-Encoding: gzip): " + plain.error().message());
      }
      reply = std::move(*plain);
    }
  }
  // A plain POST: any 2xx answer's body is the result.
  if (!options.plain_content_type.empty() && status >= 200 && status < 300) return reply;
  if (status == 200) {
    if (connect::encoding_from_content_type(content_type) == connect::Encoding::proto) return reply;
    return Error(Code::internal, "reply from " + where() + target + " has Content-Type '" +
                                     std::string(content_type.substr(0, 100)) + "', not " +
                                     std::string(connect::kProtoContentType) + " (is the URL a Connect server?)");
  }
  Error error = connect::error_from_json(reply, status);
  return Error(error.code(),
               error.message().empty() ? "HTTP " + std::to_string(status) + " from " + where() + target
                                       : error.message(),
               error.details());
}

bool idle_connection_usable(int fd, std::size_t buffered, ClientEndpoint::Clock::time_point idle_since) {
  static constexpr auto kFreshFor = std::chrono::milliseconds(200);
  if (buffered != 0) return false;
  if (ClientEndpoint::Clock::now() - idle_since < kFreshFor) return true;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

bool stale_connection_error(const boost::system::error_code& ec) {
  namespace asio = boost::asio;
  return ec == boost::beast::http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof;
}

void run_callback(Client::Callback& done, Result<std::string> result) {
  try {
    done(std::move(result));
  } catch (...) {
    // Documented as a contract violation; nobody is left to report it to.
  }
}

}  // namespace dispatch::transport
