// Prints <stem>.dispatch.codec.cc (see printers.h): the codecs of every
// message (user structs, requests and responses) and the stubs' request
// encoders. Each message gets a size pass, a write pass and a
// reader, printed field by field from the model's TypeRefs; nested
// containers that proto cannot express directly go through one-field
// wrapper messages, as the naming pass and the .proto back end describe them
// (naming.h). The recursion over types is in three functions, one per pass:
// size_field, write_field, read_field.
// Not for: the stubs' calls or the server (they call the codecs this prints).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cpp/cpp_format.h"
#include "cpp/printers.h"

namespace dispatch::gen {
namespace {

// ---- how types go on the wire ----

// As naming.h: an element of a vector, a map's value, or an optional's
// content that proto cannot hold directly.
bool wrapped(const TypeRef& t) {
  return t.kind == TypeKind::kVector || t.kind == TypeKind::kOptional || t.kind == TypeKind::kMap;
}

// The statement that puts a value the reader has just created (value-
// initialized, so with a struct's member initializers) at proto's defaults:
// a struct, or a variant whose first alternative (what it holds when no
// alternative is on the wire) is such a value; "" for other types.
std::string proto_defaults(const TypeRef& t, const std::string& x) {
  if (t.kind == TypeKind::kStruct) return "set_to_proto_defaults(&" + x + ");";
  if (t.kind == TypeKind::kVariant) return proto_defaults(t.args[0], "std::get<0>(" + x + ")");
  return "";
}

unsigned wire_type(const TypeRef& t) {
  switch (t.kind) {
    case TypeKind::kFloat: return 5;
    case TypeKind::kDouble: return 1;
    default: return is_scalar(t) ? 0 : 2;
  }
}

const char* wire_type_name(unsigned wt) {
  switch (wt) {
    case 0: return "::dispatch::wire::kVarint";
    case 1: return "::dispatch::wire::kFixed64";
    case 5: return "::dispatch::wire::kFixed32";
    default: return "::dispatch::wire::kLen";
  }
}

// The bytes of a tag's varint, as "*p++ = 0x..;" statements.
std::string put_tag(std::uint32_t field, unsigned wt) {
  std::uint64_t tag = (static_cast<std::uint64_t>(field) << 3) | wt;
  std::string out;
  do {
    unsigned byte = tag & 0x7F;
    tag >>= 7;
    if (tag) byte |= 0x80;
    char buf[32];
    std::snprintf(buf, sizeof buf, "*p++ = 0x%02X; ", byte);
    out += buf;
  } while (tag);
  out.pop_back();
  return out;
}

std::size_t tag_size(std::uint32_t field) {
  std::uint64_t tag = static_cast<std::uint64_t>(field) << 3;
  std::size_t n = 1;
  while (tag >= 0x80) {
    tag >>= 7;
    ++n;
  }
  return n;
}

// What the encoder iterates for map x: a std::map's entries are in key order
// already; a std::unordered_map's are put in it, so that maps with the same
// entries encode to the same bytes.
std::string map_entries(const TypeRef& t, const std::string& x) {
  return t.unordered ? "::dispatch::wire::in_key_order(" + x + ")" : x;
}
// A vector's or set's elements in the order the write pass puts them: a
// std::unordered_set's sorted, like a std::unordered_map's entries. (The
// size pass only adds their sizes up, in any order.)
std::string elements(const TypeRef& t, const std::string& x) {
  return t.set && t.unordered ? "::dispatch::wire::in_order(" + x + ")" : x;
}

// Ratio of one tick for kDuration (its own) and kTimestamp (its duration's).
const TypeRef& tick_type(const TypeRef& t) { return t.kind == TypeKind::kTimestamp ? t.args[0] : t; }
std::string ratio_args(const TypeRef& t) {
  const TypeRef& d = tick_type(t);
  return std::to_string(d.ratio_num) + ", " + std::to_string(d.ratio_den);
}

// ---- the printer ----

class CodecPrinter {
 public:
  explicit CodecPrinter(const CppNames& names) : n_(names), m_(names.model()) {}

  std::string print() {
    std::ostringstream o;
    o << banner(m_, "Codecs of the remote functions in " + m_.include_name + ": every message's\n// "
                   "binary protobuf encoder and decoder, and the stubs' request encoders.")
      << "#include " << quote(n_.generated_header()) << "\n\n"
      << "#include <cstddef>\n#include <cstdint>\n#include <string>\n#include <string_view>\n\n"
      << "#include \"dispatch/wire/wire_io.h\"\n\n"
      << kQuietDeprecation;

    std::vector<Message> messages;
    for (const StructDecl& s : m_.structs) messages.push_back({type_cpp(s), s.proto_name, &s.fields, ""});
    req_fields_.clear();
    resp_fields_.clear();
    for (const Function& f : m_.functions) {
      req_fields_.push_back(request_fields(f));
      resp_fields_.push_back(response_fields(f));
    }
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      messages.push_back({n_.remote_ns_q() + "::" + f.request_message, f.request_message, &req_fields_[i],
                          f.request_message + "Refs"});
      messages.push_back({n_.remote_ns_q() + "::" + f.response_message, f.response_message, &resp_fields_[i], ""});
    }

    o << ns_open(n_.wire_ns()) << "namespace {\n\n"
      << "using ::dispatch::wire::SizeCache;\nusing ::dispatch::wire::Stream;\n\n"
      << "// Each message: size_of() measures it (caching nested sizes in pre-order),\n"
      << "// write() prints it into a buffer of that size, read() parses it.\n";
    for (const Message& msg : messages) {
      if (msg.refs.empty()) {
        o << "std::size_t size_of(const " << msg.cpp << "& v, SizeCache& c);\n"
          << "std::uint8_t* write(const " << msg.cpp << "& v, SizeCache& c, std::uint8_t* p);\n";
      }
      o << "void read(Stream& in, " << msg.cpp << "* v);\n"
        << "void set_to_proto_defaults(" << msg.cpp << "* v);\n";
    }
    // Requests are encoded straight from the stub's arguments: a struct of
    // references avoids copying them into the request struct. A request
    // struct is encoded through it too, so it has no passes of its own.
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      o << "struct " << f.request_message << "Refs {\n";
      for (const Parameter& p : f.params) o << "  " << param_type(p) << p.name << ";\n";
      o << "};\n"
        << "std::size_t size_of(const " << f.request_message << "Refs& v, SizeCache& c);\n"
        << "std::uint8_t* write(const " << f.request_message << "Refs& v, SizeCache& c, std::uint8_t* p);\n";
    }
    // One set of these per message type; the runtime's out-of-line
    // encode/decode take them, so each message's public encode() and
    // decode() are a call each.
    o << "\n"
      << "// A message's passes over its address, for ::dispatch::wire's whole-message\n"
      << "// functions.\n"
      << "template <typename T>\n"
      << "std::size_t size_erased(const void* v, SizeCache& c) { return size_of(*static_cast<const T*>(v), c); }\n"
      << "template <typename T>\n"
      << "std::uint8_t* write_erased(const void* v, SizeCache& c, std::uint8_t* p) {\n"
      << "  return write(*static_cast<const T*>(v), c, p);\n"
      << "}\n"
      << "template <typename T>\n"
      << "void read_erased(Stream& in, void* v) { read(in, static_cast<T*>(v)); }\n"
      << "template <typename T>\n"
      << "::dispatch::Result<std::string> try_encode(const T& v) {\n"
      << "  return ::dispatch::wire::try_encode_erased(&v, &size_erased<T>, &write_erased<T>);\n"
      << "}\n\n";
    for (const Message& msg : messages) message_codec(o, msg);
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      Message refs{f.request_message + "Refs", f.request_message, &req_fields_[i], ""};
      encoder(o, refs);
    }
    o << "}  // namespace\n\n";

    for (const Message& msg : messages) {
      // A request without fields encodes from nothing of `value`.
      bool unused = !msg.refs.empty() && msg.fields->empty();
      o << "std::string encode(" << (unused ? "[[maybe_unused]] " : "") << "const " << msg.cpp << "& value) {\n";
      if (msg.refs.empty()) {
        o << "  return ::dispatch::wire::encode_erased(&value, &size_erased<" << msg.cpp << ">, &write_erased<"
          << msg.cpp << ">);\n";
      } else {
        std::string fields;
        for (const Field& f : *msg.fields) fields += (fields.empty() ? "value." : ", value.") + f.name;
        o << "  const " << msg.refs << " refs{" << fields << "};\n"
          << "  return ::dispatch::wire::encode_erased(&refs, &size_erased<" << msg.refs << ">, &write_erased<"
          << msg.refs << ">);\n";
      }
      o << "}\n\n"
        << "::dispatch::Result<void> decode(std::string_view bytes, " << msg.cpp << "* value) {\n"
        << "  set_to_proto_defaults(value);\n"
        << "  return ::dispatch::wire::decode_erased(bytes, " << quote(msg.proto_name) << ", &read_erased<"
        << msg.cpp << ">, value);\n"
        << "}\n\n";
    }
    o << ns_close(n_.wire_ns()) << "\n";

    // The stubs' encode_request(), here because it needs the request's
    // struct of references, which only this file sees.
    o << ns_open(n_.remote_ns()) << "\n";
    for (std::size_t i = 0; i < m_.functions.size(); ++i) {
      const Function& f = m_.functions[i];
      std::string ps = n_.params_decl(f);
      o << "::dispatch::Result<std::string> " << n_.stub(i) << "_stub::encode_request("
        << (ps.empty() ? "" : ps.substr(0, ps.size() - 2)) << ") {\n"
        << "  return " << n_.wire_ns_q() << "::try_encode(" << n_.wire_ns_q() << "::" << f.request_message
        << "Refs{" << call_args(f) << "});\n"
        << "}\n\n";
    }
    o << ns_close(n_.remote_ns()) << kEndQuiet;
    return o.str();
  }

 private:
  // One message the codecs handle: its C++ type, its proto name, and fields.
  struct Message {
    std::string cpp;         // "::shop::Order", "::shop::remote::AddRequest"
    std::string proto_name;  // "Order", used in error messages
    const std::vector<Field>* fields;
    // A request's struct of references ("AddRequestRefs"), which encodes
    // it; empty for messages with passes of their own.
    std::string refs;
  };

  void message_codec(std::ostringstream& o, const Message& msg) {
    if (msg.refs.empty()) encoder(o, msg);
    // A message read from the wire starts from proto's defaults (0, false,
    // empty, absent), not from the struct's default member initializers: a
    // field left out because it was 0 must decode as 0, not as `int n = 3`'s
    // 3. Called on the decode target and on every struct the reader creates.
    o << "void set_to_proto_defaults(" << (msg.fields->empty() ? "[[maybe_unused]] " : "") << msg.cpp
      << "* v) {\n";
    for (const Field& f : *msg.fields) {
      const std::string x = "v->" + f.name;
      switch (f.type.kind) {
        case TypeKind::kStruct: o << "  set_to_proto_defaults(&" << x << ");\n"; break;
        case TypeKind::kOptional: o << "  " << x << ".reset();\n"; break;
        case TypeKind::kVariant: {  // proto's default: no alternative, which reads as the first one's default
          o << "  " << x << ".emplace<0>();\n";
          std::string defaults = proto_defaults(f.type.args[0], "std::get<0>(" + x + ")");
          if (!defaults.empty()) o << "  " << defaults << "\n";
          break;
        }
        case TypeKind::kString:
        case TypeKind::kBytes:
        case TypeKind::kVector:
        case TypeKind::kMap: o << "  " << x << ".clear();\n"; break;
        default: o << "  " << x << " = {};\n"; break;
      }
    }
    o << "}\n\n";
    // reader
    o << "void read(Stream& in, " << (msg.fields->empty() ? "[[maybe_unused]] " : "") << msg.cpp
      << "* v) {\n"
      << "  while (std::uint32_t tag = ::dispatch::wire::next_tag(in, " << quote(msg.proto_name) << ")) {\n"
      << "    switch (tag >> 3) {\n";
    for (const Field& f : *msg.fields) {
      o << "      case " << f.number << ":  // " << f.name << "\n";
      read_field(o, "        ", f.type, "v->" + f.name, msg.proto_name, f.name, "tag", 1);
      o << "        break;\n";
    }
    o << "      default:\n"
      << "        ::dispatch::wire::skip(in, tag, " << quote(msg.proto_name) << ");\n"
      << "    }\n  }\n}\n\n";
  }

  void encoder(std::ostringstream& o, const Message& msg) {
    std::string unused = msg.fields->empty() ? "[[maybe_unused]] " : "";
    std::ostringstream size, write;
    for (const Field& f : *msg.fields) {
      Ctx ctx{msg.proto_name, f.name};
      size_field(size, "  ", f.type, "v." + f.name, f.number, false, "n", ctx, 1);
      write_field(write, "  ", f.type, "v." + f.name, f.number, false, ctx, 1);
    }
    std::string size_body = size.str(), write_body = write.str();
    // Every use of the cache goes through "c.": reserve(), set(), next(),
    // or passing it on as ", c)" / ", c, p)".
    auto uses_cache = [](const std::string& body) {
      return body.find(" c.") != std::string::npos || body.find("(c.") != std::string::npos ||
             body.find(", c)") != std::string::npos || body.find(", c, p)") != std::string::npos;
    };
    bool size_uses_c = uses_cache(size_body);
    bool write_uses_c = uses_cache(write_body);
    o << "std::size_t size_of(" << unused << "const " << msg.cpp << "& v, "
      << (size_uses_c ? "" : "[[maybe_unused]] ") << "SizeCache& c) {\n"
      << "  std::size_t n = 0;\n" << size_body << "  return n;\n}\n\n"
      << "std::uint8_t* write(" << unused << "const " << msg.cpp << "& v, "
      << (write_uses_c ? "" : "[[maybe_unused]] ") << "SizeCache& c, std::uint8_t* p) {\n"
      << write_body << "  return p;\n}\n\n";
  }

  // Where a field is, for error messages.
  struct Ctx {
    std::string message;
    std::string field;
    std::string args() const { return quote(message) + ", " + quote(field); }
  };

  // The varint-or-fixed size expression of a scalar value.
  static std::string scalar_size(const TypeRef& t, const std::string& x) {
    switch (t.kind) {
      case TypeKind::kFloat: return "4";
      case TypeKind::kDouble: return "8";
      case TypeKind::kBool: return "1";
      default: return "::dispatch::wire::varint_size(::dispatch::wire::varint_bits(" + x + "))";
    }
  }
  static std::string scalar_put(const TypeRef& t, const std::string& x) {
    switch (t.kind) {
      case TypeKind::kFloat: return "p = ::dispatch::wire::put_float(" + x + ", p);";
      case TypeKind::kDouble: return "p = ::dispatch::wire::put_double(" + x + ", p);";
      case TypeKind::kBool: return "*p++ = " + x + " ? 1 : 0;";
      default: return "p = ::dispatch::wire::put_varint(::dispatch::wire::varint_bits(" + x + "), p);";
    }
  }

  static std::string d(const char* name, int depth) { return name + std::to_string(depth); }

  // The Timespan of a duration or time point value.
  std::string timespan_expr(const TypeRef& t, const std::string& x, const Ctx& ctx) const {
    bool ts = t.kind == TypeKind::kTimestamp;
    return std::string("::dispatch::wire::") + (ts ? "timestamp_to_proto(" : "duration_to_proto(") + x +
           (ts ? ".time_since_epoch().count(), " : ".count(), ") + ratio_args(t) + ", " + ctx.args() + ")";
  }

  // Size pass: adds field `number` holding `x` (of type t) to `acc`.
  // `always`: written even when default (optional contents, map entries).
  void size_field(std::ostringstream& o, const std::string& in, const TypeRef& t, const std::string& x,
                  std::uint32_t number, bool always, const std::string& acc, const Ctx& ctx, int depth) {
    std::string ts = std::to_string(tag_size(number));
    if (is_scalar(t)) {
      std::string add = acc + " += " + ts + " + " + scalar_size(t, x) + ";";
      o << in << (always ? add : "if (!::dispatch::wire::is_default(" + x + ")) " + add) << "\n";
      return;
    }
    switch (t.kind) {
      case TypeKind::kString:
      case TypeKind::kBytes: {
        std::string add = acc + " += " + ts + " + ::dispatch::wire::len_size(" + x + ".size());";
        o << in << (always ? add : "if (!" + x + ".empty()) " + add) << "\n";
        return;
      }
      case TypeKind::kStruct: {
        std::string slot = d("slot", depth), m = d("m", depth);
        o << in << "{\n"
          << in << "  std::size_t " << slot << " = c.reserve();\n"
          << in << "  std::size_t " << m << " = size_of(" << x << ", c);\n"
          << in << "  c.set(" << slot << ", " << m << ");\n"
          << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
          << in << "}\n";
        return;
      }
      // Always written, like a struct: a returned event's field is there even
      // when its encoding is empty, so the reply is not mistaken for none.
      case TypeKind::kCloudEvent: {
        std::string slot = d("slot", depth), m = d("m", depth);
        o << in << "{\n"
          << in << "  std::size_t " << slot << " = c.reserve();\n"
          << in << "  std::size_t " << m << " = ::dispatch::wire::cloud_event_size(" << x << ");\n"
          << in << "  c.set(" << slot << ", " << m << ");\n"
          << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kDuration:
      case TypeKind::kTimestamp:
        o << in << acc << " += " << ts << " + ::dispatch::wire::len_size(::dispatch::wire::timespan_size("
          << timespan_expr(t, x, ctx) << "));\n";
        return;
      case TypeKind::kVector: {
        const TypeRef& e = t.args[0];
        std::string el = d("e", depth);
        if (is_scalar(e)) {  // packed
          std::string m = d("m", depth);
          bool fixed = e.kind == TypeKind::kFloat || e.kind == TypeKind::kDouble || e.kind == TypeKind::kBool;
          o << in << "if (!" << x << ".empty()) {\n";
          if (fixed) {
            o << in << "  std::size_t " << m << " = " << x << ".size() * " << scalar_size(e, "") << ";\n";
          } else {
            std::string slot = d("slot", depth);
            o << in << "  std::size_t " << slot << " = c.reserve();\n"
              << in << "  std::size_t " << m << " = 0;\n"
              << in << "  for (const auto& " << el << " : " << x << ") " << m << " += " << scalar_size(e, el) << ";\n"
              << in << "  c.set(" << slot << ", " << m << ");\n";
          }
          o << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
            << in << "}\n";
          return;
        }
        // Any order: a set's elements (the only vectors written in another
        // order) are never messages, so they take no size-cache slots.
        o << in << "for (const auto& " << el << " : " << x << ") {\n";
        element_size(o, in + "  ", e, el, number, acc, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      case TypeKind::kOptional: {
        const TypeRef& e = t.args[0];
        o << in << "if (" << x << ") {\n";
        element_size(o, in + "  ", e, "(*" + x + ")", number, acc, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      case TypeKind::kVariant: {  // always written, like a struct: it always holds a value
        std::string slot = d("slot", depth), m = d("m", depth);
        o << in << "{\n"
          << in << "  std::size_t " << slot << " = c.reserve();\n"
          << in << "  std::size_t " << m << " = 0;\n"
          << in << "  switch (" << x << ".index()) {\n";
        for (std::size_t i = 0; i < t.args.size(); ++i) {
          o << in << "    case " << i << ": {\n";
          element_size(o, in + "      ", t.args[i], "std::get<" + std::to_string(i) + ">(" + x + ")",
                       std::uint32_t(i + 1), m, ctx, depth + 1);
          o << in << "      break;\n" << in << "    }\n";
        }
        o << in << "    default:  // valueless by exception: no alternative\n"
          << in << "      break;\n"
          << in << "  }\n"
          << in << "  c.set(" << slot << ", " << m << ");\n"
          << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kMap: {
        std::string el = d("e", depth), slot = d("slot", depth), m = d("m", depth);
        o << in << "for (const auto& " << el << " : " << map_entries(t, x) << ") {\n"
          << in << "  std::size_t " << slot << " = c.reserve();\n"
          << in << "  std::size_t " << m << " = 0;\n";
        size_field(o, in + "  ", t.args[0], el + ".first", 1, true, m, ctx, depth + 1);
        element_size(o, in + "  ", t.args[1], el + ".second", 2, m, ctx, depth + 1);
        o << in << "  c.set(" << slot << ", " << m << ");\n"
          << in << "  " << acc << " += " << ts << " + ::dispatch::wire::len_size(" << m << ");\n"
          << in << "}\n";
        return;
      }
      default:
        return;
    }
  }

  // An element (of a vector, optional, map value): always written; a
  // wrapper message around it when proto needs one.
  void element_size(std::ostringstream& o, const std::string& in, const TypeRef& e, const std::string& x,
                    std::uint32_t number, const std::string& acc, const Ctx& ctx, int depth) {
    if (!wrapped(e)) {
      size_field(o, in, e, x, number, true, acc, ctx, depth);
      return;
    }
    std::string slot = d("slot", depth), m = d("m", depth);
    o << in << "{\n"
      << in << "  std::size_t " << slot << " = c.reserve();\n"
      << in << "  std::size_t " << m << " = 0;\n";
    size_field(o, in + "  ", e, x, 1, false, m, ctx, depth + 1);
    o << in << "  c.set(" << slot << ", " << m << ");\n"
      << in << "  " << acc << " += " << tag_size(number) << " + ::dispatch::wire::len_size(" << m << ");\n"
      << in << "}\n";
  }

  // Write pass: mirrors size_field exactly (same conditions, same order of
  // cache slots).
  void write_field(std::ostringstream& o, const std::string& in, const TypeRef& t, const std::string& x,
                   std::uint32_t number, bool always, const Ctx& ctx, int depth) {
    if (is_scalar(t)) {
      std::string stmt = put_tag(number, wire_type(t)) + " " + scalar_put(t, x);
      if (always) {
        o << in << stmt << "\n";
      } else {
        o << in << "if (!::dispatch::wire::is_default(" << x << ")) {\n" << in << "  " << stmt << "\n" << in << "}\n";
      }
      return;
    }
    switch (t.kind) {
      case TypeKind::kString:
      case TypeKind::kBytes: {
        std::string i2 = always ? in : in + "  ";
        if (!always) o << in << "if (!" << x << ".empty()) {\n";
        o << i2 << put_tag(number, 2) << "\n"
          << i2 << "p = ::dispatch::wire::put_len(" << x << ".size(), p);\n"
          << i2 << "p = ::dispatch::wire::put_raw(" << x << ".data(), " << x << ".size(), p);\n";
        if (!always) o << in << "}\n";
        return;
      }
      case TypeKind::kStruct:
        o << in << put_tag(number, 2) << "\n"
          << in << "p = ::dispatch::wire::put_len(c.next(), p);\n"
          << in << "p = write(" << x << ", c, p);\n";
        return;
      case TypeKind::kCloudEvent:
        o << in << put_tag(number, 2) << "\n"
          << in << "p = ::dispatch::wire::put_len(c.next(), p);\n"
          << in << "p = ::dispatch::wire::put_cloud_event(" << x << ", p);\n";
        return;
      case TypeKind::kDuration:
      case TypeKind::kTimestamp: {
        std::string span = d("span", depth);
        o << in << "{\n"
          << in << "  ::dispatch::wire::Timespan " << span << " = " << timespan_expr(t, x, ctx) << ";\n"
          << in << "  " << put_tag(number, 2) << "\n"
          << in << "  p = ::dispatch::wire::put_len(::dispatch::wire::timespan_size(" << span << "), p);\n"
          << in << "  p = ::dispatch::wire::put_timespan(" << span << ", p);\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kVector: {
        const TypeRef& e = t.args[0];
        std::string el = d("e", depth);
        if (is_scalar(e)) {
          bool fixed = e.kind == TypeKind::kFloat || e.kind == TypeKind::kDouble || e.kind == TypeKind::kBool;
          std::string value = e.kind == TypeKind::kBool ? "static_cast<bool>(" + el + ")" : el;
          o << in << "if (!" << x << ".empty()) {\n"
            << in << "  " << put_tag(number, 2) << "\n"
            << in << "  p = ::dispatch::wire::put_len("
            << (fixed ? x + ".size() * " + scalar_size(e, "") : std::string("c.next()")) << ", p);\n"
            << in << "  for (const auto& " << el << " : " << elements(t, x) << ") " << scalar_put(e, value) << "\n"
            << in << "}\n";
          return;
        }
        o << in << "for (const auto& " << el << " : " << elements(t, x) << ") {\n";
        element_write(o, in + "  ", e, el, number, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      case TypeKind::kOptional:
        o << in << "if (" << x << ") {\n";
        element_write(o, in + "  ", t.args[0], "(*" + x + ")", number, ctx, depth + 1);
        o << in << "}\n";
        return;
      case TypeKind::kVariant:
        o << in << put_tag(number, 2) << "\n"
          << in << "p = ::dispatch::wire::put_len(c.next(), p);\n"
          << in << "switch (" << x << ".index()) {\n";
        for (std::size_t i = 0; i < t.args.size(); ++i) {
          o << in << "  case " << i << ": {\n";
          element_write(o, in + "    ", t.args[i], "std::get<" + std::to_string(i) + ">(" + x + ")",
                        std::uint32_t(i + 1), ctx, depth + 1);
          o << in << "    break;\n" << in << "  }\n";
        }
        o << in << "  default:\n" << in << "    break;\n" << in << "}\n";
        return;
      case TypeKind::kMap: {
        std::string el = d("e", depth);
        o << in << "for (const auto& " << el << " : " << map_entries(t, x) << ") {\n"
          << in << "  " << put_tag(number, 2) << "\n"
          << in << "  p = ::dispatch::wire::put_len(c.next(), p);\n";
        write_field(o, in + "  ", t.args[0], el + ".first", 1, true, ctx, depth + 1);
        element_write(o, in + "  ", t.args[1], el + ".second", 2, ctx, depth + 1);
        o << in << "}\n";
        return;
      }
      default:
        return;
    }
  }

  void element_write(std::ostringstream& o, const std::string& in, const TypeRef& e, const std::string& x,
                     std::uint32_t number, const Ctx& ctx, int depth) {
    if (!wrapped(e)) {
      write_field(o, in, e, x, number, true, ctx, depth);
      return;
    }
    o << in << put_tag(number, 2) << "\n"
      << in << "p = ::dispatch::wire::put_len(c.next(), p);\n";
    write_field(o, in, e, x, 1, false, ctx, depth + 1);
  }

  // The expression reading one scalar of type t.
  std::string scalar_read(const TypeRef& t, const Ctx& ctx) const {
    switch (t.kind) {
      case TypeKind::kBool: return "::dispatch::wire::read_bool(in, " + ctx.args() + ")";
      case TypeKind::kFloat: return "::dispatch::wire::read_float(in, " + ctx.args() + ")";
      case TypeKind::kDouble: return "::dispatch::wire::read_double(in, " + ctx.args() + ")";
      case TypeKind::kEnum:
        return "::dispatch::wire::read_enum<" + t.cpp + ">(in, " + ctx.args() + ", " + quote(t.cpp) + ")";
      default:
        return "::dispatch::wire::read_int<" + t.cpp + ">(in, " + ctx.args() + ", " + quote(t.cpp) + ")";
    }
  }

  // Reads field data of type t (the tag, in variable `tag`, is already read)
  // into the lvalue `x`. Repeated occurrences append (vectors, maps), merge
  // (messages) or replace (scalars), as protobuf does.
  void read_field(std::ostringstream& o, const std::string& in, const TypeRef& t, const std::string& x,
                  const std::string& message, const std::string& field, const std::string& tag, int depth) {
    Ctx ctx{message, field};
    std::string expect_len = "::dispatch::wire::expect(" + tag + ", ::dispatch::wire::kLen, " + ctx.args() + ");\n";
    if (is_scalar(t)) {
      o << in << "::dispatch::wire::expect(" << tag << ", " << wire_type_name(wire_type(t)) << ", " << ctx.args() << ");\n"
        << in << x << " = " << scalar_read(t, ctx) << ";\n";
      return;
    }
    switch (t.kind) {
      case TypeKind::kString:
        o << in << expect_len << in << "::dispatch::wire::read_string(in, &" << x << ", " << ctx.args() << ");\n";
        return;
      case TypeKind::kBytes:
        o << in << expect_len << in << "::dispatch::wire::read_bytes(in, &" << x << ", " << ctx.args() << ");\n";
        return;
      case TypeKind::kCloudEvent:
        o << in << expect_len << in << "::dispatch::wire::read_cloud_event(in, &" << x << ", " << ctx.args()
          << ");\n";
        return;
      case TypeKind::kStruct: {
        std::string limit = d("limit", depth);
        o << in << expect_len << in << "{\n"
          << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter(in, " << ctx.args() << ");\n"
          << in << "  read(in, &" << x << ");\n"
          << in << "  ::dispatch::wire::leave(in, " << limit << ");\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kDuration:
      case TypeKind::kTimestamp: {
        bool ts = t.kind == TypeKind::kTimestamp;
        const TypeRef& dur = tick_type(t);
        std::string ticks = "::dispatch::wire::proto_to_ticks<" + dur.args[0].cpp +
                            ">(\n" + in + "    ::dispatch::wire::read_timespan(in, " + ctx.args() +
                            (ts ? ", true), " : ", false), ") + ratio_args(t) + ", " + ctx.args() + ")";
        o << in << expect_len << in << x << " = " << t.cpp << "(" << (ts ? dur.cpp + "(" + ticks + ")" : ticks) << ");\n";
        return;
      }
      case TypeKind::kVector: {
        const TypeRef& e = t.args[0];
        if (is_scalar(e)) {  // packed (kLen) or one value per tag
          std::string limit = d("limit", depth);
          // A set takes each value once (a repeated value is kept once).
          const std::string add = t.set ? ".insert(" : ".push_back(";
          o << in << "if ((" << tag << " & 7) == ::dispatch::wire::kLen) {\n"
            << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter_packed(in, " << ctx.args() << ");\n";
          if (!t.set) {
            o << in << "  " << x << ".reserve(" << x << ".size() + ::dispatch::wire::packed_count(in, "
              << (e.kind == TypeKind::kFloat ? 4 : e.kind == TypeKind::kDouble ? 8 : 0) << "));\n";
          }
          o << in << "  while (::dispatch::wire::more(in)) " << x << add << scalar_read(e, ctx) << ");\n"
            << in << "  ::dispatch::wire::leave_packed(in, " << limit << ");\n"
            << in << "} else {\n"
            << in << "  ::dispatch::wire::expect(" << tag << ", " << wire_type_name(wire_type(e)) << ", " << ctx.args() << ");\n"
            << in << "  " << x << add << scalar_read(e, ctx) << ");\n"
            << in << "}\n";
          return;
        }
        if (t.set) {  // strings: read one, then insert it
          std::string one = d("one", depth);
          o << in << "{\n" << in << "  " << e.cpp << " " << one << ";\n";
          element_read(o, in + "  ", e, one, message, field, tag, depth);
          o << in << "  " << x << ".insert(std::move(" << one << "));\n" << in << "}\n";
          return;
        }
        o << in << x << ".emplace_back();\n";
        if (!proto_defaults(e, x + ".back()").empty()) o << in << proto_defaults(e, x + ".back()") << "\n";
        element_read(o, in, e, x + ".back()", message, field, tag, depth);
        return;
      }
      case TypeKind::kOptional:
        if (t.args[0].kind == TypeKind::kStruct) {  // engaged: merge into it, as protobuf does
          o << in << "if (!" << x << ") set_to_proto_defaults(&" << x << ".emplace());\n";
        } else if (!proto_defaults(t.args[0], "(*" + x + ")").empty()) {  // a variant holding a struct first
          o << in << "if (!" << x << ") {\n"
            << in << "  " << x << ".emplace();\n"
            << in << "  " << proto_defaults(t.args[0], "(*" + x + ")") << "\n"
            << in << "}\n";
        } else {
          o << in << "if (!" << x << ") " << x << ".emplace();\n";
        }
        element_read(o, in, t.args[0], "(*" + x + ")", message, field, tag, depth);
        return;
      case TypeKind::kVariant: {
        // The oneof: the last alternative on the wire wins; the same
        // alternative again merges into it, as protobuf does.
        std::string limit = d("limit", depth), tg = d("tag", depth + 1);
        o << in << expect_len << in << "{\n"
          << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter(in, " << ctx.args() << ");\n"
          << in << "  while (std::uint32_t " << tg << " = ::dispatch::wire::next_tag(in, " << quote(message) << ")) {\n"
          << in << "    switch (" << tg << " >> 3) {\n";
        for (std::size_t i = 0; i < t.args.size(); ++i) {
          const std::string get = "std::get<" + std::to_string(i) + ">(" + x + ")";
          o << in << "      case " << i + 1 << ": {\n"
            << in << "        if (" << x << ".index() != " << i << ") {\n"
            << in << "          " << x << ".emplace<" << i << ">();\n";
          if (!proto_defaults(t.args[i], get).empty()) o << in << "          " << proto_defaults(t.args[i], get) << "\n";
          o << in << "        }\n";
          element_read(o, in + "        ", t.args[i], get, message, field, tg, depth + 1);
          o << in << "        break;\n" << in << "      }\n";
        }
        o << in << "      default:\n"
          << in << "        ::dispatch::wire::skip(in, " << tg << ", " << quote(message) << ");\n"
          << in << "    }\n"
          << in << "  }\n"
          << in << "  ::dispatch::wire::leave(in, " << limit << ");\n"
          << in << "}\n";
        return;
      }
      case TypeKind::kMap: {
        // The entry's tag is tag<depth + 1>, as in element_read: a map read
        // inside a wrapper's loop (std::optional<std::map<...>>) must not
        // shadow that loop's tag<depth>.
        std::string limit = d("limit", depth), key = d("key", depth), value = d("value", depth),
                    tg = d("tag", depth + 1);
        o << in << expect_len << in << "{\n"
          << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter(in, " << ctx.args() << ");\n"
          << in << "  " << t.args[0].cpp << " " << key << "{};\n"
          << in << "  " << t.args[1].cpp << " " << value << "{};\n"
          << (proto_defaults(t.args[1], value).empty() ? "" : in + "  " + proto_defaults(t.args[1], value) + "\n")
          << in << "  while (std::uint32_t " << tg << " = ::dispatch::wire::next_tag(in, " << quote(message) << ")) {\n"
          << in << "    if ((" << tg << " >> 3) == 1) {\n";
        read_field(o, in + "      ", t.args[0], key, message, field, tg, depth + 1);
        o << in << "    } else if ((" << tg << " >> 3) == 2) {\n";
        element_read(o, in + "      ", t.args[1], value, message, field, tg, depth + 1);
        o << in << "    } else {\n"
          << in << "      ::dispatch::wire::skip(in, " << tg << ", " << quote(message) << ");\n"
          << in << "    }\n"
          << in << "  }\n"
          << in << "  ::dispatch::wire::leave(in, " << limit << ");\n"
          << in << "  " << x << ".insert_or_assign(std::move(" << key << "), std::move(" << value << "));\n"
          << in << "}\n";
        return;
      }
      default:
        return;
    }
  }

  // An element (of a vector or optional, or a map's value): read as a field
  // of its own type, or through its one-field wrapper message (value = 1).
  void element_read(std::ostringstream& o, const std::string& in, const TypeRef& e, const std::string& x,
                    const std::string& message, const std::string& field, const std::string& tag, int depth) {
    if (!wrapped(e)) {
      read_field(o, in, e, x, message, field, tag, depth);
      return;
    }
    Ctx ctx{message, field};
    std::string limit = d("limit", depth), tg = d("tag", depth + 1);
    o << in << "::dispatch::wire::expect(" << tag << ", ::dispatch::wire::kLen, " << ctx.args() << ");\n"
      << in << "{\n"
      << in << "  Stream::Limit " << limit << " = ::dispatch::wire::enter(in, " << ctx.args() << ");\n"
      << in << "  while (std::uint32_t " << tg << " = ::dispatch::wire::next_tag(in, " << quote(message) << ")) {\n"
      << in << "    if ((" << tg << " >> 3) == 1) {\n";
    read_field(o, in + "      ", e, x, message, field, tg, depth + 1);
    o << in << "    } else {\n"
      << in << "      ::dispatch::wire::skip(in, " << tg << ", " << quote(message) << ");\n"
      << in << "    }\n"
      << in << "  }\n"
      << in << "  ::dispatch::wire::leave(in, " << limit << ");\n"
      << in << "}\n";
  }

  const CppNames& n_;
  const Model& m_;
  std::vector<std::vector<Field>> req_fields_, resp_fields_;
};

}  // namespace

std::string print_codec_source(const CppNames& names) { return CodecPrinter(names).print(); }

}  // namespace dispatch::gen
