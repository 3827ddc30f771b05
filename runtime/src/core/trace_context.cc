// W3C Trace Context: parsing and formatting traceparent / tracestate, and
// the random ids of new traces and spans.
#include "dispatch/core/trace_context.h"

#include <random>
#include <vector>

namespace dispatch {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Lowercase hex only: the Recommendation's HEXDIGLC.
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

template <std::size_t N>
bool parse_hex(std::string_view text, std::array<uint8_t, N>& out) noexcept {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

template <std::size_t N>
void append_hex(std::string& out, const std::array<uint8_t, N>& bytes) {
  for (uint8_t b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
}

template <std::size_t N>
bool all_zero(const std::array<uint8_t, N>& bytes) noexcept {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

// A per-thread generator: ids must not repeat across threads or processes,
// and need no cryptographic strength (the Recommendation asks for
// randomness, not secrecy). Thread-local so that starting a trace takes no
// lock shared by the I/O threads.
std::mt19937_64& generator() noexcept {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return rng;
}

template <std::size_t N>
std::array<uint8_t, N> random_nonzero() noexcept {
  std::array<uint8_t, N> out{};
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      uint64_t r = generator()();
      for (std::size_t j = 0; j < 8 && i + j < N; ++j, r >>= 8) out[i + j] = static_cast<uint8_t>(r);
    }
  } while (all_zero(out));
  return out;
}

bool is_lcalpha(char c) noexcept { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_key_char(char c) noexcept {
  return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

// key = simple-key / multi-tenant-key
// simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
// multi-tenant-key = tenant-id "@" system-id
// tenant-id = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
// system-id = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
bool valid_key(std::string_view key) noexcept {
  const auto at = key.find('@');
  if (at == std::string_view::npos) {
    if (key.empty() || key.size() > 256 || !is_lcalpha(key[0])) return false;
    for (char c : key) {
      if (!is_key_char(c)) return false;
    }
    return true;
  }
  const std::string_view tenant = key.substr(0, at), system = key.substr(at + 1);
  if (tenant.empty() || tenant.size() > 241 || !(is_lcalpha(tenant[0]) || is_digit(tenant[0]))) return false;
  if (system.empty() || system.size() > 14 || !is_lcalpha(system[0])) return false;
  for (char c : tenant) {
    if (!is_key_char(c)) return false;
  }
  for (char c : system) {
    if (!is_key_char(c)) return false;
  }
  return true;
}

// value = 0*255(chr) nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E;
// chr = %x20 / nblk-chr
bool valid_value(std::string_view value) noexcept {
  if (value.empty() || value.size() > 256) return false;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
  }
  return value.back() != ' ';
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool TraceContext::valid() const noexcept { return !all_zero(trace_id) && !all_zero(span_id); }

std::string TraceContext::trace_id_hex() const {
  std::string out;
  if (!valid()) return out;
  out.reserve(32);
  append_hex(out, trace_id);
  return out;
}

std::string TraceContext::traceparent() const {
  std::string out;
  if (!valid()) return out;
  out.reserve(55);
  out.append("00-");
  append_hex(out, trace_id);
  out.push_back('-');
  append_hex(out, span_id);
  out.push_back('-');
  // Version 00 defines the sampled flag only; the others are sent as zero.
  out.append(sampled() ? "01" : "00");
  return out;
}

std::optional<TraceContext> parse_traceparent(std::string_view value) noexcept {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2+1+32+1+16+1+2.
  constexpr std::size_t kLength = 55;
  if (value.size() < kLength) return std::nullopt;
  std::array<uint8_t, 1> version{};
  if (!parse_hex(value.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append fields
  // after another "-", which a version-00 reader skips.
  if (version[0] == 0 ? value.size() != kLength : (value.size() > kLength && value[kLength] != '-')) {
    return std::nullopt;
  }
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  TraceContext context;
  std::array<uint8_t, 1> flags{};
  if (!parse_hex(value.substr(3, 32), context.trace_id) || !parse_hex(value.substr(36, 16), context.parent_id) ||
      !parse_hex(value.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (all_zero(context.trace_id) || all_zero(context.parent_id)) return std::nullopt;
  context.flags = flags[0];
  return context;
}

std::optional<std::string> parse_tracestate(std::string_view value) {
  std::vector<std::string_view> members;
  std::vector<std::string_view> keys;
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    const std::string_view member = trim_ows(value.substr(start, comma - start));
    start = comma + 1;
    if (member.empty()) continue;  // "Empty and whitespace-only list members are allowed"
    const auto eq = member.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = member.substr(0, eq);
    if (!valid_key(key) || !valid_value(member.substr(eq + 1))) return std::nullopt;
    for (std::string_view seen : keys) {
      if (seen == key) return std::nullopt;
    }
    keys.push_back(key);
    members.push_back(member);
    if (members.size() > 32) return std::nullopt;
  }
  auto joined_size = [&] {
    std::size_t n = members.empty() ? 0 : members.size() - 1;
    for (std::string_view m : members) n += m.size();
    return n;
  };
  constexpr std::size_t kMaxLength = 512, kLongMember = 128;
  for (std::size_t i = members.size(); i-- > 0 && joined_size() > kMaxLength;) {
    if (members[i].size() > kLongMember) members.erase(members.begin() + static_cast<std::ptrdiff_t>(i));
  }
  while (joined_size() > kMaxLength) members.pop_back();
  std::string out;
  for (std::string_view m : members) {
    if (!out.empty()) out.push_back(',');
    out.append(m);
  }
  return out;
}

TraceContext start_call_trace(std::optional<std::string_view> traceparent,
                              std::optional<std::string_view> tracestate) {
  std::optional<TraceContext> parsed;
  if (traceparent) parsed = parse_traceparent(*traceparent);
  TraceContext context;
  if (parsed) {
    context = std::move(*parsed);
    // The tracestate belongs to the traceparent: read only when that parsed.
    if (tracestate) context.tracestate = parse_tracestate(*tracestate).value_or(std::string());
  } else {
    context.trace_id = random_trace_id();
  }
  context.span_id = random_span_id();
  return context;
}

std::array<uint8_t, 8> random_span_id() noexcept { return random_nonzero<8>(); }
std::array<uint8_t, 16> random_trace_id() noexcept { return random_nonzero<16>(); }

}  // namespace dispatch
