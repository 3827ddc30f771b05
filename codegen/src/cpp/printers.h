// The printers of the C++ back end, one per generated file; cpp_emitter.cc
// puts their output into files. Each reads the model through CppNames, so
// that every printer spells a generated name the same way.
//   header_printer.cc  <stem>.dispatch.h: messages, codec declarations, stubs
//   codec_printer.cc   <stem>.dispatch.codec.cc: every message's size pass,
//                      write pass and reader; the stubs' request encoders
//   stub_printer.cc    <stem>.dispatch.cc: the stubs' calls, the descriptor
//   server_printer.cc  <stem>.dispatch.server.cc: the handlers and the
//                      dispatch::Service
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

}  // namespace dispatch::gen
