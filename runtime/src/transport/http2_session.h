// One HTTP/2 server connection's protocol state, without a socket: bytes
// from the peer in, request events out to a Handler, answers in, bytes to
// write out. nghttp2 does the framing, HPACK, stream states, SETTINGS, PING
// and flow control; this class sets its limits and turns its callbacks into
// a handful of events. The fuzz target fuzz_http2_session drives it with raw
// bytes.
//
// Defences, each closing or resetting only what misbehaves: the preface is
// checked (a wrong one ends the session); SETTINGS_MAX_CONCURRENT_STREAMS
// refuses streams beyond it; a header block larger than max_header_bytes
// (once decoded: an HPACK bomb) resets its stream; frames larger than
// SETTINGS_MAX_FRAME_SIZE, bad window updates, floods of PING/SETTINGS
// (unanswered ACKs), rapid resets and endless CONTINUATION frames end the
// session with a GOAWAY (nghttp2's checks). Bytes the handler still holds
// count against a per-connection budget: past it, received DATA is not
// acknowledged (no WINDOW_UPDATE), so a peer can make the connection buffer
// no more than the budget plus one window.
//
// Not for: sockets and timers (http2_connection.cc), gRPC (grpc_call.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dispatch/core/result.h"

struct nghttp2_session;

namespace dispatch::transport {

using Http2Headers = std::vector<std::pair<std::string, std::string>>;

// A header field whose bytes the caller keeps alive and unchanged for as
// long as the session lives (string literals: the gRPC answers' fixed
// fields). nghttp2 takes them without copying their bytes.
struct Http2Field {
  std::string_view name;   // lower-case
  std::string_view value;
};
using Http2Fields = std::span<const Http2Field>;

struct Http2Limits {
  uint32_t max_concurrent_streams = 100;
  // Decoded size of one header block (names + values + 32 per field, as
  // SETTINGS_MAX_HEADER_LIST_SIZE counts it).
  std::size_t max_header_bytes = 16 * 1024;
  // Per-stream receive window; the connection's is larger, see below.
  uint32_t stream_window = 1u << 20;
  // Bytes the handler may hold (received, not released) before the session
  // stops acknowledging DATA.
  std::size_t held_budget = 32u << 20;
};

class Http2Session {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // A request's header block, pseudo-headers (":method", ":path",
    // ":authority", ":scheme") first. Names are lower-case.
    virtual void on_request(int32_t stream, Http2Headers headers) = 0;
    // Request body bytes; the handler releases them (release()) once it no
    // longer holds them.
    virtual void on_data(int32_t stream, std::string_view data) = 0;
    // The peer finished sending (END_STREAM).
    virtual void on_end(int32_t stream) = 0;
    // The stream is gone: answered, or reset by either side. No more calls
    // for it; anything still to be sent on it is dropped.
    virtual void on_close(int32_t stream, uint32_t error_code) = 0;
  };

  Http2Session(Handler& handler, const Http2Limits& limits);
  ~Http2Session();
  Http2Session(const Http2Session&) = delete;
  Http2Session& operator=(const Http2Session&) = delete;

  // Feeds bytes read from the peer; the handler's callbacks run inside.
  // An error is fatal for the connection: write what take_output() still
  // has (nghttp2 has queued a GOAWAY naming the problem), then close.
  Result<void> receive(std::string_view bytes);

  // Answers stream `stream`: response headers (":status" first), then the
  // body, then trailers (empty: none, the body's last frame ends the
  // stream). Headers only, ending the stream, when body and trailers are
  // empty and `end_after_headers`. More body may follow with send_data()
  // when `more` is set; finish() then ends the stream.
  void respond(int32_t stream, const Http2Headers& headers, std::string body, Http2Headers trailers,
               bool more = false);
  // respond() with fixed header and trailer blocks (see Http2Field): no
  // copies of their bytes, no allocation for them per stream.
  void respond_fixed(int32_t stream, Http2Fields headers, std::string body, Http2Fields trailers,
                     bool more = false);
  // More body for a stream answered with `more`.
  void send_data(int32_t stream, std::string data);
  // Ends a stream answered with `more`, with `trailers` (or without any).
  void finish(int32_t stream, Http2Headers trailers);
  // finish() with fixed trailers.
  void finish_fixed(int32_t stream, Http2Fields trailers);
  // RST_STREAM with `error_code` (e.g. NGHTTP2_CANCEL = 8).
  void reset(int32_t stream, uint32_t error_code);
  // The handler no longer holds `bytes` of the stream's DATA (what it still
  // holds when the stream closes is released then).
  void release(int32_t stream, std::size_t bytes);
  // Graceful shutdown: GOAWAY with the last stream id; streams already
  // open finish.
  void shut_down();

  // Appends the bytes to write now to `out`; false when there are none.
  bool take_output(std::string& out);
  // The session has nothing more to read or write: close the connection.
  bool done() const;
  std::size_t open_streams() const noexcept { return open_streams_; }

 private:
  struct Out {
    std::string data;
    std::size_t offset = 0;
    bool more = false;  // send_data() may still add
    Http2Headers trailers;
    Http2Fields fixed_trailers;  // sent when `trailers` is empty
  };
  struct In {
    Http2Headers headers;
    std::size_t header_bytes = 0;
    std::size_t held = 0;      // delivered to the handler, not released
    std::size_t deferred = 0;  // received, not yet acknowledged (over budget)
  };
  friend struct Http2Callbacks;

  void acknowledge(int32_t stream, std::size_t bytes);
  void acknowledge_deferred();

  Handler& handler_;
  Http2Limits limits_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, In> in_;
  std::unordered_map<int32_t, Out> out_;
  std::size_t held_ = 0;
  std::size_t open_streams_ = 0;
  std::string* sink_ = nullptr;  // take_output()'s destination while it runs
};

}  // namespace dispatch::transport
