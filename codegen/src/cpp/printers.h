// The printers of the C++ back end, one per generated file; cpp_emitter.cc
// puts their output into files. Each reads the model through CppNames, so
// that every printer spells a generated name the same way.
//   header_printer.cc  <stem>.dispatch.h: messages, codec declarations, stubs
//   codec_printer.cc   <stem>.dispatch.codec.cc: every message's size pass,
//                      write pass and reader; the stubs' request encoders
//   stub_printer.cc    <stem>.dispatch.cc: the stubs' calls, the descriptor
//   server_printer.cc  <stem>.dispatch.server.cc: the handlers and the
//                      dispatch::Service
//   stateful_printer.cc the stateful functions' parts of those files (empty
//                      for a header without stateful functions)
//   faas_printer.cc    the typed proxies of FaaS functions, in the header
//                      and the client source (empty without any)
// The two client sources are separate translation units, so a build compiles
// them in parallel.
#pragma once

#include <string>

#include "cpp/cpp_names.h"

namespace dispatch::gen {

std::string print_header(const CppNames& names);
std::string print_codec_source(const CppNames& names);
std::string print_client_source(const CppNames& names, const std::string& serialized_file_descriptor);
std::string print_server_source(const CppNames& names);

// stateful_printer.cc: in the header, its #includes, state wrappers and stubs; in the
// client source, the stubs' bodies; in the server source, its #include, the
// functions' entries (in the anonymous namespace) and the Service that
// carries them (`service_head` opens its initializer, up to the companion).
std::string stateful_header_includes(const CppNames& names);
// The structs of the state wrapper messages (model.h, StructDecl::state_field),
// in <ns>::remote.
std::string print_state_wrappers(const CppNames& names);
std::string print_stateful_stubs(const CppNames& names);
std::string print_stateful_stub_bodies(const CppNames& names);
std::string stateful_server_includes(const CppNames& names);
std::string print_stateful_entries(const CppNames& names);
std::string print_stateful_service(const CppNames& names, const std::string& service_head);

// faas_printer.cc: in the header, its #include and the proxies (in each
// function's <ns>::faas); in the client source, its #include and their
// bodies.
std::string faas_header_includes(const CppNames& names);
std::string print_faas_proxies(const CppNames& names);
std::string faas_source_includes(const CppNames& names);
std::string print_faas_proxy_bodies(const CppNames& names);

}  // namespace dispatch::gen
