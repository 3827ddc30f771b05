// Bad signatures end to end: a dispatch::Server verifying RFC 9421
// signatures (ServerOptions::verifier, as ServerOptions::from_env() sets it
// from DISPATCH_VERIFICATION_KEY), sent every kind of bad
// Signature / Signature-Input / Content-Digest over a raw socket. Each row
// must be refused with the documented code (401 unauthenticated when the
// signature is missing or malformed, 403 permission_denied when it fails a
// check) and the server must keep serving correctly signed calls.
// Not for: the verifier's unit tests (runtime/src/security/signature_test.cc).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/server.h"
#include "raw_http.h"

namespace dispatch::badinput {
namespace {

using namespace std::chrono_literals;
namespace sec = dispatch::security;
using Headers = std::vector<std::pair<std::string, std::string>>;

const sec::SigningKey& server_key() {
  static const sec::SigningKey key = sec::SigningKey::from_seed(std::string(32, '\x11')).value();
  return key;
}
const sec::SigningKey& other_key() {
  static const sec::SigningKey key = sec::SigningKey::from_seed(std::string(32, '\x22')).value();
  return key;
}

const std::string kPath = "/bad.Strict/check";
const std::string kType = "application/proto";

class Signed : public ::testing::Test {
 public:  // the row table below builds requests with these
  static void SetUpTestSuite() {
    table_ = new DispatchTable{&strict::service()};
    ServerOptions o;
    o.port = 0;
    o.workers = 2;
    o.logger = Logger(LogLevel::off);
    o.verifier = std::make_shared<const sec::Verifier>(server_key().public_key());
    server_ = new Server(*table_, std::move(o));
    auto started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().what();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete table_;
  }

  static std::string signed_request(const std::string& body, const Headers& headers) {
    std::string extra;
    for (const auto& [name, value] : headers) extra += name + ": " + value + "\r\n";
    return request("POST", kPath, kType, body, extra);
  }
  static Headers sign(const std::string& body, const sec::SigningKey& key = server_key(),
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
                      sec::SignerOptions options = {}, const std::string& path = kPath) {
    return sec::Signer(key, std::move(options)).sign("POST", path, "127.0.0.1", kType, body, now);
  }
  static Answer send(const std::string& bytes) {
    RawSocket s(server_->port());
    EXPECT_TRUE(s.send(bytes));
    return s.read();
  }
  static void expect_serving() {
    const std::string body = strict::nested(1);
    const Answer a = send(signed_request(body, sign(body)));
    EXPECT_EQ(a.status, 200) << a.body;
  }

  static DispatchTable* table_;
  static Server* server_;
};
DispatchTable* Signed::table_ = nullptr;
Server* Signed::server_ = nullptr;

Headers replace(Headers h, const std::string& name, const std::string& value) {
  for (auto& [n, v] : h) {
    if (n == name) v = value;
  }
  return h;
}
Headers drop(Headers h, const std::string& name) {
  std::erase_if(h, [&](const auto& p) { return p.first == name; });
  return h;
}
std::string flip_a_signature_byte(std::string sig) {
  // "dispatch=:<base64>:": change one base64 character in the middle.
  const std::size_t i = sig.find(':') + 10;
  sig[i] = sig[i] == 'A' ? 'B' : 'A';
  return sig;
}
std::string header_of(const Headers& h, const std::string& name) {
  for (const auto& [n, v] : h) {
    if (n == name) return v;
  }
  return {};
}

struct Row {
  const char* name;
  std::function<std::string()> bytes;
  int status;
  const char* code;
};

std::vector<Row> rows() {
  const std::string body = strict::nested(2);
  const auto now = std::chrono::system_clock::now();
  return {
      {"valid_signature", [=] { return Signed::signed_request(body, Signed::sign(body)); }, 200, ""},
      {"no_signature", [=] { return request("POST", kPath, kType, body); }, 401, "unauthenticated"},
      {"no_signature_input",
       [=] { return Signed::signed_request(body, drop(Signed::sign(body), "Signature-Input")); }, 401,
       "unauthenticated"},
      {"signature_input_garbage",
       [=] { return Signed::signed_request(body, replace(Signed::sign(body), "Signature-Input", "%%%(")); }, 401,
       "unauthenticated"},
      {"signature_not_base64",
       [=] { return Signed::signed_request(body, replace(Signed::sign(body), "Signature", "dispatch=:!!!!:")); },
       401, "unauthenticated"},
      {"labels_do_not_match",
       [=] {
         const Headers h = Signed::sign(body);
         std::string sig = header_of(h, "Signature");
         sig.replace(0, sig.find('='), "other");
         return Signed::signed_request(body, replace(h, "Signature", sig));
       },
       401, "unauthenticated"},
      {"no_content_digest",
       [=] { return Signed::signed_request(body, drop(Signed::sign(body), "Content-Digest")); }, 401,
       "unauthenticated"},
      {"content_digest_garbage",
       // Content-Digest is covered by the signature, so changing it breaks
       // the signature before the digest itself is parsed.
       [=] { return Signed::signed_request(body, replace(Signed::sign(body), "Content-Digest", "sha-512=:x:")); },
       403, "permission_denied"},
      {"signed_by_another_key", [=] { return Signed::signed_request(body, Signed::sign(body, other_key())); }, 403,
       "permission_denied"},
      {"signature_byte_flipped",
       [=] {
         const Headers h = Signed::sign(body);
         return Signed::signed_request(body, replace(h, "Signature", flip_a_signature_byte(header_of(h, "Signature"))));
       },
       403, "permission_denied"},
      {"body_changed_after_signing",
       [=] { return Signed::signed_request(strict::nested(3), Signed::sign(body)); }, 403, "permission_denied"},
      {"signed_for_another_path",
       [=] { return Signed::signed_request(body, Signed::sign(body, server_key(), now, {}, "/bad.Strict/other")); },
       403, "permission_denied"},
      {"signature_too_old",
       [=] { return Signed::signed_request(body, Signed::sign(body, server_key(), now - 1h)); }, 403,
       "permission_denied"},
      {"signature_from_the_future",
       [=] { return Signed::signed_request(body, Signed::sign(body, server_key(), now + 1h)); }, 403,
       "permission_denied"},
      {"unknown_keyid",
       [=] {
         sec::SignerOptions o;
         o.keyid = "someone-else";
         return Signed::signed_request(body, Signed::sign(body, server_key(), now, o));
       },
       403, "permission_denied"},
  };
}

void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

class BadSignature : public Signed, public ::testing::WithParamInterface<Row> {};

TEST_P(BadSignature, RefusedAndKeepsServing) {
  const Row& row = GetParam();
  const Answer a = send(row.bytes());
  EXPECT_EQ(a.status, row.status) << row.name << ": " << a.body;
  if (row.status >= 400) {
    EXPECT_EQ(a.code(), row.code) << a.body;
  }
  expect_serving();
}

INSTANTIATE_TEST_SUITE_P(Table, BadSignature, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dispatch::badinput
