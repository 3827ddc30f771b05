// Plain binary POSTs through dispatch::HttpClient; see http_poster.h.
#include "statefun_runtime/http_poster.h"

#include <map>
#include <memory>
#include <mutex>

#include "dispatch/transport/http_client.h"

namespace dispatch::statefun {
namespace {

constexpr std::string_view kContentType = "application/octet-stream";

class Clients {
 public:
  explicit Clients(HttpClientOptions options) : options_(std::move(options)) {}

  void post(const std::string& url, std::string body, std::chrono::milliseconds timeout,
            const std::vector<std::pair<std::string, std::string>>& headers, Client::Callback done) {
    // "http://host:port/path?q" -> origin "http://host:port", target "/path?q".
    const std::size_t scheme_end = url.find("://");
    const std::size_t path_at = scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
    const std::string origin = path_at == std::string::npos ? url : url.substr(0, path_at);
    const std::string target = path_at == std::string::npos ? "/" : url.substr(path_at);
    std::shared_ptr<HttpClient> client;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = clients_.find(origin);
      if (it == clients_.end()) {
        auto made = HttpClient::create(origin, options_);
        if (!made.ok()) {
          done(made.error().with_context("endpoint " + url));
          return;
        }
        it = clients_.emplace(origin, std::shared_ptr<HttpClient>(std::move(made).value())).first;
      }
      client = it->second;
    }
    CallOptions o;
    o.timeout = timeout;
    o.headers = headers;
    client->call_async(target, std::move(body), o, std::move(done));
  }

 private:
  const HttpClientOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<HttpClient>> clients_;
};

}  // namespace

Poster http_poster(std::function<void(std::string_view, std::string_view, std::string_view, std::string_view,
                                      std::string_view, std::vector<std::pair<std::string, std::string>>&)>
                       decorate) {
  HttpClientOptions o;
  o.plain_content_type = std::string(kContentType);
  o.decorate = std::move(decorate);
  // Batches go out on one event-loop thread per origin, many at once.
  o.max_connections = 256;
  o.max_idle_connections = 256;
  o.async_threads = 16;
  auto clients = std::make_shared<Clients>(std::move(o));
  return [clients](const std::string& url, std::string body, std::chrono::milliseconds timeout,
                   const std::vector<std::pair<std::string, std::string>>& headers, Client::Callback done) {
    clients->post(url, std::move(body), timeout, headers, std::move(done));
  };
}

}  // namespace dispatch::statefun
