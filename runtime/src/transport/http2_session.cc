// Http2Session: nghttp2's server session behind a bytes-in, events-out
// interface (see the header).
#include "transport/http2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>

namespace dispatch::transport {
namespace {

std::vector<nghttp2_nv> to_nv(const Http2Headers& headers) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                            NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

// Fixed fields as nghttp2 takes them without copies: up to kInline of them
// on the stack.
class FixedNv {
 public:
  explicit FixedNv(Http2Fields fields) {
    nghttp2_nv* out = inline_.data();
    if (fields.size() > inline_.size()) {
      heap_.resize(fields.size());
      out = heap_.data();
    }
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const Http2Field& f = fields[i];
      out[i] = nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data())),
                          reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data())), f.name.size(), f.value.size(),
                          NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    }
    data_ = out;
    size_ = fields.size();
  }
  const nghttp2_nv* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  std::array<nghttp2_nv, 8> inline_{};
  std::vector<nghttp2_nv> heap_;
  const nghttp2_nv* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace

// nghttp2's C callbacks, friends of the session they serve.
struct Http2Callbacks {
  static Http2Session& self(void* user) { return *static_cast<Http2Session*>(user); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      Http2Session& s = self(user);
      auto [it, added] = s.in_.try_emplace(frame->hd.stream_id);
      // A gRPC request carries about ten fields: one allocation for them.
      if (added) it->second.headers.reserve(16);
      ++s.open_streams_;
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Http2Session& s = self(user);
    auto it = s.in_.find(frame->hd.stream_id);
    if (it == s.in_.end()) return 0;
    Http2Session::In& in = it->second;
    // As SETTINGS_MAX_HEADER_LIST_SIZE counts: 32 bytes of overhead a field.
    in.header_bytes += namelen + valuelen + 32;
    if (in.header_bytes > s.limits_.max_header_bytes) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM for this stream only
    }
    // Trailers a client sends after its body are read and dropped: a unary
    // or streaming gRPC request carries none that matter.
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      in.headers.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                              std::string(reinterpret_cast<const char*>(value), valuelen));
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Http2Session& s = self(user);
    const int32_t id = frame->hd.stream_id;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        auto it = s.in_.find(id);
        if (it == s.in_.end()) return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          s.handler_.on_request(id, std::move(it->second.headers));
          it->second.headers.clear();
        }
        // The handler may have reset the stream meanwhile.
        if (end && s.in_.count(id)) s.handler_.on_end(id);
        return 0;
      }
      case NGHTTP2_DATA:
        if (end && s.in_.count(id)) s.handler_.on_end(id);
        return 0;
      default:
        return 0;
    }
  }

  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
    Http2Session& s = self(user);
    auto it = s.in_.find(id);
    if (it == s.in_.end()) {
      // A stream already answered or reset: its bytes are nobody's, but
      // they still count against the connection's window.
      nghttp2_session_consume_connection(s.session_, len);
      return 0;
    }
    s.held_ += len;
    it->second.held += len;
    if (s.held_ <= s.limits_.held_budget) {
      nghttp2_session_consume(s.session_, id, len);
    } else {
      it->second.deferred += len;
    }
    s.handler_.on_data(id, std::string_view(reinterpret_cast<const char*>(data), len));
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    Http2Session& s = self(user);
    s.out_.erase(id);
    auto it = s.in_.find(id);
    if (it == s.in_.end()) return 0;
    if (it->second.deferred) nghttp2_session_consume_connection(s.session_, it->second.deferred);
    s.held_ -= std::min(s.held_, it->second.held);
    s.in_.erase(it);
    --s.open_streams_;
    s.handler_.on_close(id, error_code);
    return 0;
  }

  // The body's bytes go out without a copy into nghttp2's buffer: this
  // says how many the next DATA frame carries (NGHTTP2_DATA_FLAG_NO_COPY),
  // and send_data() appends the frame to the output.
  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t*, size_t length, uint32_t* flags,
                           nghttp2_data_source*, void* user) {
    Http2Session& s = self(user);
    auto it = s.out_.find(id);
    if (it == s.out_.end()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    Http2Session::Out& out = it->second;
    const std::size_t n = std::min(length, out.data.size() - out.offset);
    if (n > 0) *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (out.offset + n < out.data.size()) return static_cast<ssize_t>(n);
    if (out.more) return n == 0 ? static_cast<ssize_t>(NGHTTP2_ERR_DEFERRED) : static_cast<ssize_t>(n);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!out.trailers.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      auto nv = to_nv(out.trailers);
      nghttp2_submit_trailer(session, id, nv.data(), nv.size());
    } else if (!out.fixed_trailers.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      const FixedNv nv(out.fixed_trailers);
      nghttp2_submit_trailer(session, id, nv.data(), nv.size());
    }
    return static_cast<ssize_t>(n);
  }

  // A DATA frame read_body() sized: its header, then the bytes straight
  // from the stream's body, into the output take_output() is filling.
  static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                       nghttp2_data_source*, void* user) {
    Http2Session& s = self(user);
    auto it = s.out_.find(frame->hd.stream_id);
    if (s.sink_ == nullptr || it == s.out_.end() || it->second.data.size() - it->second.offset < length) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // cannot happen; resets the stream if it does
    }
    Http2Session::Out& out = it->second;
    std::string& sink = *s.sink_;
    sink.append(reinterpret_cast<const char*>(framehd), 9);
    const std::size_t padlen = frame->data.padlen;
    if (padlen > 0) sink.push_back(static_cast<char>(padlen - 1));
    sink.append(out.data, out.offset, length);
    if (padlen > 1) sink.append(padlen - 1, '\0');
    out.offset += length;
    if (out.offset == out.data.size()) {
      out.data.clear();
      out.offset = 0;
    }
    return 0;
  }

  // Queues a stream's answer, HEADERS as `nv`: alone, ending the stream,
  // when no body, trailers or more body follow; else with read_body() as
  // the source, which reads the stream's Out. That is filled here but for
  // the trailers, which the caller sets (nghttp2 reads them only in
  // take_output()).
  static Http2Session::Out* submit_answer(Http2Session& s, int32_t stream, const nghttp2_nv* nv, std::size_t nvlen,
                                          std::string body, bool has_trailers, bool more) {
    if (body.empty() && !has_trailers && !more) {
      nghttp2_submit_response(s.session_, stream, nv, nvlen, nullptr);
      return nullptr;
    }
    Http2Session::Out& out = s.out_[stream];
    out.data = std::move(body);
    out.offset = 0;
    out.more = more;
    out.trailers.clear();
    out.fixed_trailers = {};
    nghttp2_data_provider provider{};
    provider.read_callback = &read_body;
    nghttp2_submit_response(s.session_, stream, nv, nvlen, &provider);
    return &out;
  }
};

Http2Session::Http2Session(Handler& handler, const Http2Limits& limits) : handler_(handler), limits_(limits) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Http2Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Http2Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Http2Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Http2Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Http2Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_send_data_callback(callbacks, &Http2Callbacks::send_data);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // DATA is acknowledged when the handler's held bytes allow (see above).
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Streams beyond the limit are refused even before the peer has
  // acknowledged our SETTINGS.
  nghttp2_option_set_peer_max_concurrent_streams(option, 100);
  // Rapid reset (CVE-2023-44487): a burst of 1000 resets, then 33/s.
  nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33);
  // CONTINUATION floods (CVE-2024-28182).
  nghttp2_option_set_max_continuations(option, 8);
  nghttp2_option_set_max_outbound_ack(option, 1000);
  nghttp2_option_set_max_settings(option, 32);
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits_.max_header_bytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // The connection's window: room for several streams' windows at once.
  const auto connection_window = static_cast<int32_t>(
      std::min<std::size_t>(std::max<std::size_t>(limits_.held_budget, limits_.stream_window), (1u << 31) - 1));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window);
}

Http2Session::~Http2Session() { nghttp2_session_del(session_); }

Result<void> Http2Session::receive(std::string_view bytes) {
  const ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (n < 0) {
    return Error(Code::invalid_argument, std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n)));
  }
  acknowledge_deferred();
  return {};
}

void Http2Session::respond(int32_t stream, const Http2Headers& headers, std::string body, Http2Headers trailers,
                           bool more) {
  if (!in_.count(stream)) return;  // reset or closed meanwhile: nobody waits for this answer
  auto nv = to_nv(headers);
  const bool has_trailers = !trailers.empty();
  if (Out* out =
          Http2Callbacks::submit_answer(*this, stream, nv.data(), nv.size(), std::move(body), has_trailers, more)) {
    out->trailers = std::move(trailers);
  }
}

void Http2Session::respond_fixed(int32_t stream, Http2Fields headers, std::string body, Http2Fields trailers,
                                 bool more) {
  if (!in_.count(stream)) return;
  const FixedNv nv(headers);
  const bool has_trailers = !trailers.empty();
  if (Out* out =
          Http2Callbacks::submit_answer(*this, stream, nv.data(), nv.size(), std::move(body), has_trailers, more)) {
    out->fixed_trailers = trailers;
  }
}

void Http2Session::send_data(int32_t stream, std::string data) {
  auto it = out_.find(stream);
  if (it == out_.end()) return;
  it->second.data.append(data);
  nghttp2_session_resume_data(session_, stream);
}

void Http2Session::finish(int32_t stream, Http2Headers trailers) {
  auto it = out_.find(stream);
  if (it == out_.end()) return;
  it->second.more = false;
  it->second.trailers = std::move(trailers);
  it->second.fixed_trailers = {};
  nghttp2_session_resume_data(session_, stream);
}

void Http2Session::finish_fixed(int32_t stream, Http2Fields trailers) {
  auto it = out_.find(stream);
  if (it == out_.end()) return;
  it->second.more = false;
  it->second.trailers.clear();
  it->second.fixed_trailers = trailers;
  nghttp2_session_resume_data(session_, stream);
}

void Http2Session::reset(int32_t stream, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream, error_code);
}

void Http2Session::release(int32_t stream, std::size_t bytes) {
  auto it = in_.find(stream);
  if (it == in_.end()) return;
  bytes = std::min(bytes, it->second.held);
  it->second.held -= bytes;
  held_ -= std::min(held_, bytes);
  acknowledge_deferred();
}

void Http2Session::acknowledge_deferred() {
  for (auto& [id, in] : in_) {
    if (held_ > limits_.held_budget) return;
    if (in.deferred == 0) continue;
    nghttp2_session_consume(session_, id, in.deferred);
    in.deferred = 0;
  }
}

void Http2Session::shut_down() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

bool Http2Session::take_output(std::string& out) {
  const std::size_t before = out.size();
  sink_ = &out;  // DATA frames are appended by send_data(), in order
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  sink_ = nullptr;
  return out.size() != before;
}

bool Http2Session::done() const {
  return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

}  // namespace dispatch::transport
