// The [[dispatch::function]] scanner over plain tokens, and the libclang
// tokenization that feeds it source text; see annotation_scanner.h.
#include "annotation_scanner.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "clang_source.h"

namespace dispatch::gen {
namespace {

bool is_identifier(const std::string& s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || digit(c); });
}

// "10m": a whole number and a unit (ms, s, m, h, d), in milliseconds;
// nullopt when it is not one or not positive.
std::optional<std::int64_t> duration_ms(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  const std::int64_t n = std::stoll(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  std::int64_t scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "d") scale = 86'400'000;
  if (scale == 0 || n <= 0) return std::nullopt;
  return n * scale;
}

bool is_expire(const std::string& name) { return name == "expire_after_write" || name == "expire_after_invoke"; }

// The attribute a misspelt `dispatch::<name>` most likely meant: the one a
// few edits away (`event_` is event, `fass` faas), else function, the usual.
std::string closest_attribute(const std::string& name) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = up;
      }
    }
    return row[b.size()];
  };
  std::string best = "function";
  size_t best_distance = std::max<size_t>(1, name.size() / 3) + 1;
  for (const char* known : {"function", "event", "faas", "expire_after_write", "expire_after_invoke"}) {
    size_t d = distance(name, known);
    if (d < best_distance) best = known, best_distance = d;
  }
  return best;
}

}  // namespace

AnnotationScan scan_annotations(std::string_view text, std::vector<Token> toks) {
  AnnotationScan scan;
  std::vector<Annotation>& found = scan.annotations;
  auto error = [&](const SourceLocation& loc, std::string message) {
    scan.errors.push_back(Diagnostic{loc, std::move(message)});
  };
  const size_t size = text.size();

  // Preprocessor directives are not declarations. The attribute inside a
  // macro would apply wherever the macro is used, which the tokens do not
  // show, so it is an error rather than silently ignored.
  auto line_start = [&](unsigned offset) {
    if (offset > size) return false;
    while (offset > 0 && text[offset - 1] != '\n') {
      char c = text[offset - 1];
      if (c != ' ' && c != '\t') return false;
      --offset;
    }
    return true;
  };
  auto directive_end = [&](unsigned offset) {
    for (; offset < size; ++offset) {
      if (text[offset] != '\n') continue;
      unsigned back = offset;
      if (back > 0 && text[back - 1] == '\r') --back;
      if (back == 0 || text[back - 1] != '\\') break;
    }
    return offset;
  };
  std::vector<Token> code;
  code.reserve(toks.size());
  for (size_t i = 0; i < toks.size(); ++i) {
    if (!(toks[i].text == "#" && line_start(toks[i].begin))) {
      code.push_back(std::move(toks[i]));
      continue;
    }
    unsigned end = directive_end(toks[i].begin);
    size_t j = i + 1;
    for (; j < toks.size() && toks[j].begin < end; ++j) {
      if (toks[j].text == "dispatch" && j + 2 < toks.size() && toks[j + 1].text == "::" &&
          (toks[j + 2].text == "function" || toks[j + 2].text == "event" || toks[j + 2].text == "faas" ||
           is_expire(toks[j + 2].text)))
        error(toks[j].loc, "[[dispatch::function]] inside a macro is not recognised (dispatch-gen reads the "
                           "header's own tokens); write the attribute out before each function");
    }
    i = j - 1;
  }
  toks = std::move(code);

  auto is = [&](size_t i, const char* text) { return i < toks.size() && toks[i].text == text; };
  // The arguments of [[dispatch::event(...)]] and [[dispatch::faas(...)]]:
  // string literals separated by commas, checked for what each one names.
  auto read_string_arguments = [&](const std::string& name, const std::vector<size_t>* arg, Annotation& a) {
    std::vector<std::pair<std::string, SourceLocation>> strings;
    bool comma_expected = false;
    for (size_t k = 0; arg && k < arg->size(); ++k) {
      const Token& t = toks[(*arg)[k]];
      if (comma_expected && t.text == ",") {
        comma_expected = false;
        continue;
      }
      if (comma_expected || t.kind != TokenKind::kLiteral || t.text.size() < 2 || t.text.front() != '"' ||
          t.text.back() != '"') {
        error(t.loc, "[[dispatch::" + name + "]] takes string literals, e.g. " +
                         (name == "event" ? "[[dispatch::event(\"com.example.order.placed\")]]"
                                          : "[[dispatch::faas(\"fibonacci\")]]"));
        return false;
      }
      strings.emplace_back(t.text.substr(1, t.text.size() - 2), t.loc);
      comma_expected = true;
    }
    if (arg && !arg->empty() && !comma_expected) {
      error(toks[arg->back()].loc, "[[dispatch::" + name + "]] has a trailing ','");
      return false;
    }
    for (const auto& [text, loc] : strings) {
      if (text.find('\\') != std::string::npos) {
        error(loc, "'" + text + "': escape sequences are not read here; write the name plainly");
        return false;
      }
    }
    if (name == "event") {
      if (strings.size() > 2) {
        error(strings[2].second, "[[dispatch::event]] takes at most the event type and the reply event's type");
        return false;
      }
      for (const auto& [text, loc] : strings) {
        if (text.empty() || text.find_first_of(" \t") != std::string::npos) {
          error(loc, "event type '" + text + "' is empty or has spaces; name a type such as "
                     "\"com.example.order.placed\"");
          return false;
        }
      }
      if (!strings.empty()) a.event_type = strings[0].first;
      if (strings.size() > 1) a.reply_type = strings[1].first;
      return true;
    }
    if (strings.size() != 1) {
      error(a.loc, "[[dispatch::faas]] takes one string literal naming the function on the gateway, "
                   "e.g. [[dispatch::faas(\"fibonacci\")]]");
      return false;
    }
    const std::string& fn = strings[0].first;
    const bool valid = !fn.empty() && std::isalnum(static_cast<unsigned char>(fn[0])) &&
                       fn.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") == std::string::npos;
    if (!valid) {
      error(strings[0].second, "FaaS function name '" + fn +
                                   "' is not one: lower-case letters, digits and '-', then '.<namespace>' "
                                   "if it has one (\"fibonacci\", \"figlet.openfaas-fn\")");
      return false;
    }
    a.faas_name = fn;
    return true;
  };
  // A pinned workflow version's form: not empty, at most
  // kMaxWorkflowVersion printable ASCII characters without spaces.
  auto read_version = [&](const std::string& version, const SourceLocation& loc) {
    if (version.empty()) {
      error(loc, "workflow version is empty; pin a version such as version = \"3\", or leave it out for the "
                 "generated one (docs/workflows.md)");
      return false;
    }
    if (version.size() > kMaxWorkflowVersion) {
      error(loc, "workflow version '" + version + "' has " + std::to_string(version.size()) +
                     " characters; at most " + std::to_string(kMaxWorkflowVersion));
      return false;
    }
    for (char c : version) {
      if (c == '\\') {
        error(loc, "workflow version '" + version + "': escape sequences are not read here; write it plainly");
        return false;
      }
      if (c <= ' ' || c > '~') {
        error(loc, "workflow version '" + version +
                       "' has a space or a character that is not printable ASCII; use letters, digits and "
                       "punctuation, e.g. \"3\" or \"2026-12.1\"");
        return false;
      }
    }
    return true;
  };
  // The arguments of [[dispatch::function(...)]]: the remote name, then
  // keyword arguments, each at most once: a workflow's pinned version and
  // a plain function's idempotency. ("name"), (version = "3"),
  // ("name", version = "3"), (idempotency = "no_side_effects"), ...
  auto read_function_arguments = [&](const std::vector<size_t>& arg, Annotation& a) {
    auto string_at = [&](size_t k) {
      if (k >= arg.size()) return false;
      const Token& t = toks[arg[k]];
      return t.kind == TokenKind::kLiteral && t.text.size() >= 2 && t.text.front() == '"' && t.text.back() == '"';
    };
    auto unquoted = [&](size_t k) { return toks[arg[k]].text.substr(1, toks[arg[k]].text.size() - 2); };
    const char* usage = "[[dispatch::function]] takes a string literal naming the remote function, then keyword "
                        "arguments: version = \"...\" pinning a workflow's version, idempotency = "
                        "\"no_side_effects\" or \"idempotent\"; e.g. [[dispatch::function(\"charge_v2\")]], "
                        "[[dispatch::function(\"checkout\", version = \"3\")]]";
    size_t k = 0;
    if (string_at(0)) {
      const std::string remote = unquoted(0);
      // "namespace/name": a stateful function's type (the walker checks
      // that the function is one).
      const std::size_t slash = remote.rfind('/');
      const bool function_type = slash != std::string::npos && slash != 0 && is_identifier(remote.substr(slash + 1)) &&
                                 remote.find_first_of(" \t\\\"") == std::string::npos;
      if (!function_type && !is_identifier(remote)) {
        error(toks[arg[0]].loc, "remote name '" + remote +
                                    "' is not an identifier; use letters, digits and '_', "
                                    "not starting with a digit");
        return false;
      }
      a.remote_name = remote;
      k = 1;
      if (k == arg.size()) return true;
      if (toks[arg[k]].text != "," || k + 1 == arg.size()) {
        error(toks[arg[k]].loc, usage);
        return false;
      }
      ++k;
    }
    for (;;) {
      if (!(k + 3 <= arg.size() && toks[arg[k]].kind == TokenKind::kIdentifier && toks[arg[k + 1]].text == "=" &&
            string_at(k + 2))) {
        error(k < arg.size() ? toks[arg[k]].loc : a.loc, usage);
        return false;
      }
      const std::string key = toks[arg[k]].text;
      const std::string value = unquoted(k + 2);
      const SourceLocation& loc = toks[arg[k + 2]].loc;
      if (key == "version") {
        if (a.version) {
          error(toks[arg[k]].loc, "version is given twice");
          return false;
        }
        if (!read_version(value, loc)) return false;
        a.version = value;
        a.version_loc = loc;
      } else if (key == "idempotency") {
        if (a.idempotency) {
          error(toks[arg[k]].loc, "idempotency is given twice");
          return false;
        }
        for (Idempotency level : {Idempotency::no_side_effects, Idempotency::idempotent}) {
          if (value == idempotency_name(level)) a.idempotency = level;
        }
        if (!a.idempotency) {
          error(loc, "idempotency '" + value +
                         "' is not one: \"no_side_effects\" (a call changes nothing; Connect clients may call it "
                         "with GET) or \"idempotent\" (repeating a call changes nothing more)");
          return false;
        }
        a.idempotency_loc = loc;
      } else {
        error(toks[arg[k]].loc, "'" + key + "' is not an argument of [[dispatch::function]]; " + usage);
        return false;
      }
      k += 3;
      if (k == arg.size()) return true;
      if (toks[arg[k]].text != "," || k + 1 == arg.size()) {
        error(toks[arg[k]].loc, usage);
        return false;
      }
      ++k;
    }
  };
  for (size_t i = 0; i + 1 < toks.size(); ++i) {
    if (!(is(i, "[") && is(i + 1, "["))) continue;
    size_t start = i;
    size_t j = i + 2;
    std::string using_ns;
    if (is(j, "using") && j + 2 < toks.size() && is(j + 2, ":")) {
      using_ns = toks[j + 1].text;
      j += 3;
    }
    // attribute-list: attribute (',' attribute)* until "]]".
    bool closed = false;
    while (j < toks.size()) {
      if (is(j, "]") && is(j + 1, "]")) {
        closed = true;
        break;
      }
      if (is(j, ",")) {
        ++j;
        continue;
      }
      if (toks[j].kind != TokenKind::kIdentifier && toks[j].kind != TokenKind::kKeyword) break;
      std::string ns = using_ns, name = toks[j].text;
      size_t name_tok = j, attr_tok = j;
      ++j;
      if (is(j, "::") && j + 1 < toks.size()) {
        ns = name;
        name = toks[j + 1].text;
        name_tok = j + 1;
        j += 2;
      }
      std::optional<std::vector<size_t>> args;
      if (is(j, "(")) {
        args.emplace();
        int depth = 0;
        for (; j < toks.size(); ++j) {
          if (is(j, "(")) ++depth;
          else if (is(j, ")") && --depth == 0) break;
          else if (depth == 1) args->push_back(j);
        }
        ++j;
      }
      if (is(j, "...")) ++j;
      if (ns != "dispatch") continue;
      if (name != "function" && name != "event" && name != "faas" && !is_expire(name)) {
        error(toks[name_tok].loc, "unknown attribute 'dispatch::" + name + "'; did you mean 'dispatch::" + closest_attribute(name) +
                                      "'?");
        continue;
      }
      Annotation a;
      a.loc = toks[attr_tok].loc;
      if (is_expire(name)) {
        a.kind = name == "expire_after_write" ? Annotation::Kind::expire_after_write
                                              : Annotation::Kind::expire_after_invoke;
        const bool one_string = args && args->size() == 1 && toks[(*args)[0]].kind == TokenKind::kLiteral &&
                                toks[(*args)[0]].text.size() >= 2 && toks[(*args)[0]].text.front() == '"';
        std::optional<std::int64_t> ms;
        if (one_string) ms = duration_ms(toks[(*args)[0]].text.substr(1, toks[(*args)[0]].text.size() - 2));
        if (!ms) {
          error(one_string ? toks[(*args)[0]].loc : a.loc,
                "[[dispatch::" + name + "]] takes one string literal, a positive whole number and a unit "
                "(ms, s, m, h, d), e.g. [[dispatch::" + name + "(\"10m\")]]");
          continue;
        }
        a.expire_ms = *ms;
        a.begin = toks[start].begin;
        found.push_back(a);
        continue;
      }
      if (name != "function") {
        a.kind = name == "event" ? Annotation::Kind::event : Annotation::Kind::faas;
        if (!read_string_arguments(name, args ? &*args : nullptr, a)) continue;
        a.begin = toks[start].begin;
        found.push_back(a);
        continue;
      }
      if (args && !read_function_arguments(*args, a)) continue;
      a.begin = toks[start].begin;
      found.push_back(a);
    }
    if (!closed) continue;
    for (size_t k = found.size(); k > 0 && found[k - 1].begin == toks[start].begin; --k)
      found[k - 1].end = toks[j + 1].end;
    i = j + 1;
  }
  // An annotation whose list did not close is not an attribute we read.
  found.erase(std::remove_if(found.begin(), found.end(), [](const Annotation& a) { return a.end == 0; }),
              found.end());
  return scan;
}

AnnotationScan scan_annotations_in_text(const std::string& text, const std::string& file_name,
                                        const std::vector<std::string>& clang_args) {
  IndexPtr index = make_index();
  TuPtr tu;
  std::vector<std::string> args = clang_arguments(clang_args);
  CXErrorCode status = parse_translation_unit(index.get(), file_name, args, &text, &tu);
  if (!tu) {
    std::string shown;
    for (const std::string& a : args) shown += " " + a;
    AnnotationScan failed;
    failed.errors.push_back(Diagnostic{{}, "clang could not tokenize '" + file_name + "' (libclang error " +
                                               std::to_string(int(status)) + "); check the clang arguments:" +
                                               shown});
    return failed;
  }
  // Clang's errors about the code are for parse_header() to report; one
  // with no place in a file is about the arguments, and would leave the
  // tokens read under other settings than the caller asked for.
  std::vector<Diagnostic> argument_errors;
  for (unsigned i = 0, n = clang_getNumDiagnostics(tu.get()); i < n; ++i) {
    CXDiagnostic d = clang_getDiagnostic(tu.get(), i);
    SourceLocation loc = location_of(clang_getDiagnosticLocation(d));
    if (clang_getDiagnosticSeverity(d) >= CXDiagnostic_Error && loc.file.empty())
      argument_errors.push_back(Diagnostic{loc, take(clang_getDiagnosticSpelling(d))});
    clang_disposeDiagnostic(d);
  }
  SourceCode code = source_code(tu.get(), clang_getFile(tu.get(), file_name.c_str()));
  AnnotationScan scan = scan_annotations(code.text, std::move(code.tokens));
  scan.errors.insert(scan.errors.begin(), argument_errors.begin(), argument_errors.end());
  return scan;
}

}  // namespace dispatch::gen
