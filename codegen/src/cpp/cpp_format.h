// Text helpers the C++ back end's printers share: C++ string and byte
// literals, namespace blocks, the banner atop every generated file and the
// pragmas that quiet deprecation warnings in generated code.
// Not for: names of generated entities (cpp_names.h), nor printing a file.
#pragma once

#include <string>

#include "model.h"

namespace dispatch::gen {

// `code` with every `std::` the code names (not in string and character
// literals or comments) written `::std::`, so that a user's type or
// namespace named `std` in the functions' namespace, where the generated
// code lives, does not capture it.
std::string qualify_std(const std::string& code);

// A C++ string literal: "a\"b".
std::string quote(const std::string& s);

// A byte string as concatenated C string literals, one line each, each line
// prefixed with `indent`; no trailing newline (the caller ends the statement).
std::string byte_literal(const std::string& bytes, const std::string& indent);

// "namespace ns {\n" and "}  // namespace ns\n", or nothing for the global
// namespace ("").
std::string ns_open(const std::string& ns);
std::string ns_close(const std::string& ns);

// The comment atop a generated file: what it holds, and that it is generated
// from the model's header.
std::string banner(const Model& model, const std::string& what);

// Generated code uses what the header declares, deprecated or not (a
// retired field is still encoded and decoded, a deprecated function still
// served): that is not the user's use, so it does not warn. Users' own
// uses of the deprecated names, and of a deprecated function's stub, do.
// The generated header quiets the user's header too when it includes it
// first: GCC and clang report the implicit copy, move and destructor of a
// struct with a deprecated field at the struct, where the generated code
// cannot quiet them otherwise.
inline constexpr const char* kQuietDeprecation =
    "#if defined(__GNUC__)\n#pragma GCC diagnostic push\n"
    "#pragma GCC diagnostic ignored \"-Wdeprecated-declarations\"\n#endif\n\n";
inline constexpr const char* kEndQuiet = "\n#if defined(__GNUC__)\n#pragma GCC diagnostic pop\n#endif\n";

}  // namespace dispatch::gen
