// The functions of types/api.h: echoes, so a round trip through the stubs
// checks encoder and decoder on both sides.
#include "types/api.h"

namespace types {

Scalars echo_scalars(const Scalars& v) { return v; }
Containers echo_containers(Containers v) { return v; }
Times echo_times(const Times& t) { return t; }
std::vector<std::byte> echo_bytes(const std::vector<std::byte>& b) { return b; }
std::optional<std::int64_t> maybe(bool give) {
  if (give) return 0;  // present and zero: must survive the trip
  return std::nullopt;
}
std::map<std::string, std::vector<Inner>> group(const std::vector<Inner>& items) {
  std::map<std::string, std::vector<Inner>> out;
  for (const Inner& i : items) out[i.label].push_back(i);
  return out;
}
void ping() {}
Tree echo_tree(const Tree& t) { return t; }
Doc echo_doc(Doc d) { return d; }
HoldsDefaults echo_defaults(const HoldsDefaults& h) { return h; }
Sets echo_sets(const Sets& s) { return s; }
Colors echo_colors(const Colors& c) { return c; }
Seen see_views(std::string_view text, std::span<const std::int64_t> numbers, std::span<const std::byte> data,
               const std::span<const Inner>& inners, std::span<const std::string> names, std::string_view suffix) {
  return Seen{std::string(text),
              {numbers.begin(), numbers.end()},
              {data.begin(), data.end()},
              {inners.begin(), inners.end()},
              {names.begin(), names.end()},
              std::string(suffix)};
}
Shapes echo_shapes(const Shapes& s) { return s; }
std::variant<std::int32_t, std::string> flip(const std::variant<std::int32_t, std::string>& v) {
  if (const auto* n = std::get_if<std::int32_t>(&v)) return std::to_string(*n);
  return std::int32_t(std::get<std::string>(v).size());
}

}  // namespace types
