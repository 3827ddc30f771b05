// The printers of the C++ back end, one per concern of the generated code;
// cpp_emitter.cc puts their output into files. Each reads the model through
// CppNames, so that every printer spells a generated name the same way.
//   header_printer.cc  <stem>.dispatch.h: messages, codec declarations, stubs
//   codec_printer.cc   every message's size pass, write pass and reader
//   stub_printer.cc    the stubs' bodies and the embedded descriptor
//   server_printer.cc  the handlers and the dispatch::Service
#pragma once

#include <sstream>
#include <string>

#include "cpp/cpp_names.h"

namespace dispatch::gen {

std::string print_header(const CppNames& names);

// The codecs of every message, in the wire namespace: the internal size_of,
// write, read and set_to_proto_defaults, and the public encode and decode.
void print_codecs(std::ostringstream& o, const CppNames& names);

// The client half: the codecs, the stubs' bodies and the descriptor.
std::string print_client_source(const CppNames& names, const std::string& serialized_file_descriptor);

std::string print_server_source(const CppNames& names);

}  // namespace dispatch::gen
