// dispatch-sigtool: signs or verifies one request from files, so that tests
// can exchange signed requests with an independent RFC 9421 implementation
// (tests/interop/signatures) without a network server.
//
//   dispatch-sigtool sign --key FILE --method M --target T --authority A
//                         --content-type CT --body FILE [--keyid K] [--created UNIX]
//     prints the headers to add, one "Name: value" per line
//   dispatch-sigtool verify --pub FILE --method M --target T --authority A
//                           --headers FILE --body FILE [--keyid K] [--now UNIX]
//     exit 0 when accepted; 1 and "<code>: <message>" on stdout when refused
//
// Not for: production use (test tooling; it trusts its arguments).
#include <cctype>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "dispatch/security/signature.h"

namespace {

using namespace dispatch::security;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::chrono::system_clock::time_point at(const std::map<std::string, std::string>& args,
                                         const char* name) {
  auto it = args.find(name);
  if (it == args.end()) return std::chrono::system_clock::now();
  return std::chrono::system_clock::time_point(std::chrono::seconds(std::stoll(it->second)));
}

int run(int argc, char** argv) {
  if (argc < 2) throw std::runtime_error("usage: dispatch-sigtool sign|verify --option value ...");
  const std::string command = argv[1];
  std::map<std::string, std::string> args;
  for (int i = 2; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  auto need = [&](const char* name) -> const std::string& {
    auto it = args.find(name);
    if (it == args.end()) throw std::runtime_error(std::string("missing ") + name);
    return it->second;
  };
  const std::string body = read_file(need("--body"));

  if (command == "sign") {
    SignerOptions options;
    if (args.count("--keyid")) options.keyid = args["--keyid"];
    Signer signer(SigningKey::parse(read_file(need("--key"))).value(), options);
    for (const auto& [name, value] :
         signer.sign(need("--method"), need("--target"), need("--authority"),
                     need("--content-type"), body, at(args, "--created"))) {
      std::cout << name << ": " << value << "\n";
    }
    return 0;
  }
  if (command == "verify") {
    std::map<std::string, std::string> headers;
    std::istringstream lines(read_file(need("--headers")));
    for (std::string line; std::getline(lines, line);) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = lower(line.substr(0, colon));
      std::string value = line.substr(colon + 1);
      if (headers.count(name)) {
        headers[name] += ", " + value;  // RFC 9110 5.3: combine repeated lines
      } else {
        headers[name] = value;
      }
    }
    const std::string keyid = args.count("--keyid") ? args["--keyid"] : "default";
    Verifier verifier({NamedKey{keyid, VerificationKey::parse(read_file(need("--pub"))).value()}});
    HttpRequestView request{need("--method"), need("--target"), need("--authority"),
                            [&](std::string_view name) -> std::optional<std::string_view> {
                              auto it = headers.find(std::string(name));
                              if (it == headers.end()) return std::nullopt;
                              return std::string_view(it->second);
                            },
                            body};
    auto result = verifier.verify(request, at(args, "--now"));
    if (result) {
      std::cout << "ok\n";
      return 0;
    }
    std::cout << result.error().what() << "\n";
    return 1;
  }
  throw std::runtime_error("unknown command '" + command + "' (sign or verify)");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "dispatch-sigtool: " << e.what() << "\n";
    return 2;
  }
}
