// Tests for secure_options.cc: keys from the environment (every accepted form,
// rotation lists, and errors that name the variable), the client and server
// from_env() helpers that use them, and the server's credential check over a
// request view. No sockets here; tests/e2e_signed runs the same over HTTP.
#include "transport/secure_options.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/grpc_client.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"

namespace dispatch::transport {
namespace {

namespace sec = dispatch::security;

// Sets (or unsets, for nullptr) an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

sec::SigningKey key_from_seed(char fill) { return sec::SigningKey::from_seed(std::string(32, fill)).value(); }

// A request as a server would see it, with headers by lower-case name.
struct Request {
  std::string method = "POST";
  std::string target = "/shop.ApiService/add";
  std::string authority = "127.0.0.1:8000";
  std::string body = std::string("\x08\x28\x10\x02", 4);
  std::map<std::string, std::string> headers{{"content-type", "application/proto"}};

  void sign(const sec::SigningKey& key, std::string keyid = "default") {
    sec::SignerOptions options;
    options.keyid = std::move(keyid);
    for (auto& [name, value] : sec::Signer(key, options).sign(method, target, authority, "application/proto", body)) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      headers[lower] = value;
    }
  }
  sec::HttpRequestView view() const {
    sec::HttpRequestView v;
    v.method = method;
    v.target = target;
    v.authority = authority;
    v.body = body;
    v.header = [this](std::string_view name) -> std::optional<std::string_view> {
      auto it = headers.find(std::string(name));
      if (it == headers.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    return v;
  }
};

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

constexpr const char* kVar = "DISPATCH_TEST_VERIFICATION_KEY";

TEST(VerifierFromEnv, UnsetEmptyOrBlankMeansNoVerification) {
  for (const char* value : {static_cast<const char*>(nullptr), "", "  \n"}) {
    ScopedEnv env(kVar, value);
    auto v = verifier_from_env(kVar);
    ASSERT_TRUE(v.ok()) << v.error().what();
    EXPECT_EQ(*v, nullptr) << (value ? value : "(unset)");
  }
}

TEST(VerifierFromEnv, Base64AndPemWithLiteralNewlinesVerify) {
  const auto key = key_from_seed('a');
  std::string pem = key.public_key().to_pem();
  std::string literal;  // newlines as the two characters '\' 'n', as .env files carry them
  for (char c : pem) literal += c == '\n' ? std::string("\\n") : std::string(1, c);
  for (const std::string& value : {key.public_key().to_base64(), pem, literal}) {
    ScopedEnv env(kVar, value.c_str());
    auto v = verifier_from_env(kVar);
    ASSERT_TRUE(v.ok()) << v.error().what();
    ASSERT_NE(*v, nullptr);
    Request signed_request;
    signed_request.sign(key);
    EXPECT_TRUE((*v)->verify(signed_request.view()).ok()) << value;
    Request other;
    other.sign(key_from_seed('b'));
    EXPECT_EQ((*v)->verify(other.view()).error().code(), Code::permission_denied) << value;
  }
}

TEST(VerifierFromEnv, CommaSeparatedKeysAreARotation) {
  const auto old_key = key_from_seed('o'), new_key = key_from_seed('n');
  const std::string value = old_key.public_key().to_pem() + " , " + new_key.public_key().to_base64();
  ScopedEnv env(kVar, value.c_str());
  auto v = verifier_from_env(kVar);
  ASSERT_TRUE(v.ok()) << v.error().what();
  for (const auto* key : {&old_key, &new_key}) {
    Request r;
    r.sign(*key);
    EXPECT_TRUE((*v)->verify(r.view()).ok());
  }
  Request stranger;
  stranger.sign(key_from_seed('s'));
  EXPECT_EQ((*v)->verify(stranger.view()).error().code(), Code::permission_denied);
}

TEST(VerifierFromEnv, MalformedKeysNameTheVariableAndThePosition) {
  {
    ScopedEnv env(kVar, "bm90IGEga2V5");  // base64 of "not a key": 9 bytes
    auto v = verifier_from_env(kVar);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().code(), Code::invalid_argument);
    EXPECT_TRUE(contains(v.error().message(), std::string(kVar) + ": ")) << v.error().message();
    EXPECT_TRUE(contains(v.error().message(), "32 bytes")) << v.error().message();
  }
  {
    const std::string value = key_from_seed('a').public_key().to_base64() + ",%%%";
    ScopedEnv env(kVar, value.c_str());
    auto v = verifier_from_env(kVar);
    ASSERT_FALSE(v.ok());
    EXPECT_TRUE(contains(v.error().message(), "(key 2 of 2)")) << v.error().message();
  }
  {
    const std::string b64 = key_from_seed('a').public_key().to_base64();
    const std::string value = b64 + ",," + b64;
    ScopedEnv env(kVar, value.c_str());
    auto v = verifier_from_env(kVar);
    ASSERT_FALSE(v.ok());
    EXPECT_TRUE(contains(v.error().message(), "(key 2 of 3): empty key")) << v.error().message();
  }
  {
    // A private key where the public one belongs: the security layer says so.
    const std::string value = key_from_seed('a').to_pem();
    ScopedEnv env(kVar, value.c_str());
    auto v = verifier_from_env(kVar);
    ASSERT_FALSE(v.ok());
    EXPECT_TRUE(contains(v.error().message(), "private key")) << v.error().message();
  }
}

TEST(SignerFromEnv, LoadsTheKeyOrSaysWhatIsWrong) {
  constexpr const char* var = "DISPATCH_TEST_SIGNING_KEY";
  {
    ScopedEnv env(var, nullptr);
    auto s = signer_from_env(var);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(*s, nullptr);
  }
  {
    const auto key = key_from_seed('k');
    ScopedEnv env(var, key.to_pem().c_str());
    auto s = signer_from_env(var);
    ASSERT_TRUE(s.ok()) << s.error().what();
    ASSERT_NE(*s, nullptr);
    EXPECT_EQ((*s)->key().public_key(), key.public_key());
    EXPECT_EQ((*s)->options().keyid, "default");
    EXPECT_EQ((*s)->options().label, "dispatch");
  }
  {
    ScopedEnv env(var, "-----BEGIN PRIVATE KEY-----\\nMC4CAQAw");
    auto s = signer_from_env(var);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code(), Code::invalid_argument);
    EXPECT_TRUE(contains(s.error().message(), var)) << s.error().message();
  }
}

TEST(HttpClientOptionsFromEnv, SignerAndApiKey) {
  const auto key = key_from_seed('c');
  {
    ScopedEnv signing("DISPATCH_SIGNING_KEY", key.to_pem().c_str());
    ScopedEnv api("DISPATCH_API_KEY", "k-123");
    auto o = HttpClientOptions::try_from_env();
    ASSERT_TRUE(o.ok()) << o.error().what();
    ASSERT_NE(o->signer, nullptr);
    EXPECT_EQ(o->signer->key().public_key(), key.public_key());
    EXPECT_EQ(o->api_key, "k-123");
    EXPECT_NE(HttpClientOptions::from_env().signer, nullptr);
  }
  {
    ScopedEnv signing("DISPATCH_SIGNING_KEY", nullptr);
    auto o = HttpClientOptions::try_from_env();
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->signer, nullptr);
  }
  {
    ScopedEnv signing("DISPATCH_SIGNING_KEY", "c2hvcnQ=");
    auto o = HttpClientOptions::try_from_env();
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error().code(), Code::invalid_argument);
    EXPECT_TRUE(contains(o.error().message(), "DISPATCH_SIGNING_KEY")) << o.error().message();
    try {
      (void)HttpClientOptions::from_env();
      ADD_FAILURE() << "from_env() accepted a malformed DISPATCH_SIGNING_KEY";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::invalid_argument);
      EXPECT_TRUE(contains(e.message(), "DISPATCH_SIGNING_KEY")) << e.message();
    }
  }
}

TEST(GrpcClientOptionsFromEnv, SignerAndApiKeyAsHttpClientReadsThem) {
  const auto key = key_from_seed('g');
  {
    ScopedEnv signing("DISPATCH_SIGNING_KEY", key.to_pem().c_str());
    ScopedEnv api("DISPATCH_API_KEY", "k-456");
    auto o = GrpcClientOptions::try_from_env();
    ASSERT_TRUE(o.ok()) << o.error().what();
    ASSERT_NE(o->signer, nullptr);
    EXPECT_EQ(o->signer->key().public_key(), key.public_key());
    EXPECT_EQ(o->api_key, "k-456");
  }
  {
    ScopedEnv signing("DISPATCH_SIGNING_KEY", "c2hvcnQ=");
    auto o = GrpcClientOptions::try_from_env();
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error().code(), Code::invalid_argument);
    EXPECT_TRUE(contains(o.error().message(), "DISPATCH_SIGNING_KEY")) << o.error().message();
    EXPECT_THROW((void)GrpcClientOptions::from_env(), Error);
  }
}

TEST(ServerOptionsFromEnv, VerifierFromTheEnvironment) {
  ScopedEnv port("PORT", nullptr);
  ScopedEnv addr("DISPATCH_ENDPOINT_ADDR", nullptr);
  {
    ScopedEnv key("DISPATCH_VERIFICATION_KEY", nullptr);
    auto o = ServerOptions::from_env();
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->verifier, nullptr);
    EXPECT_TRUE(o->warn_if_unverified);
  }
  {
    const auto k = key_from_seed('v');
    ScopedEnv key("DISPATCH_VERIFICATION_KEY", k.public_key().to_base64().c_str());
    auto o = ServerOptions::from_env();
    ASSERT_TRUE(o.ok());
    ASSERT_NE(o->verifier, nullptr);
    Request r;
    r.sign(k);
    EXPECT_TRUE(o->verifier->verify(r.view()).ok());
  }
  {
    ScopedEnv key("DISPATCH_VERIFICATION_KEY", "nope");
    auto o = ServerOptions::from_env();
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error().code(), Code::invalid_argument);
    EXPECT_TRUE(contains(o.error().message(), "DISPATCH_VERIFICATION_KEY: ")) << o.error().message();
  }
  // A plain ServerOptions (dispatchd's API, tests) does not warn.
  EXPECT_FALSE(ServerOptions{}.warn_if_unverified);
}

TEST(CheckCredentials, BearerKeyThenSignature) {
  const auto key = key_from_seed('s');
  const sec::Verifier verifier(key.public_key());
  const sec::BearerKeys bearer({"secret-1", "secret-2"});

  Request unsigned_request;
  EXPECT_TRUE(check_credentials(nullptr, nullptr, unsigned_request.view()).ok());

  auto r = check_credentials(nullptr, &bearer, unsigned_request.view());
  EXPECT_EQ(r.error().code(), Code::unauthenticated);
  EXPECT_EQ(r.error().message(), "API key: missing Authorization header");
  unsigned_request.headers["authorization"] = "Bearer secret-3";
  r = check_credentials(nullptr, &bearer, unsigned_request.view());
  EXPECT_EQ(r.error().message(), "API key: unknown API key");
  unsigned_request.headers["authorization"] = "Basic c2VjcmV0LTI=";
  r = check_credentials(nullptr, &bearer, unsigned_request.view());
  EXPECT_EQ(r.error().message(), "API key: Authorization is not a Bearer token");
  unsigned_request.headers["authorization"] = "Bearer secret-2";
  EXPECT_TRUE(check_credentials(nullptr, &bearer, unsigned_request.view()).ok());

  r = check_credentials(&verifier, &bearer, unsigned_request.view());
  EXPECT_EQ(r.error().code(), Code::unauthenticated);
  EXPECT_TRUE(contains(r.error().message(), "request signature: ")) << r.error().message();
  EXPECT_TRUE(contains(r.error().message(), "missing Signature")) << r.error().message();

  Request good;
  good.sign(key);
  good.headers["authorization"] = "Bearer secret-1";
  EXPECT_TRUE(check_credentials(&verifier, &bearer, good.view()).ok());

  // The bearer key is checked first: a good signature does not excuse it.
  good.headers.erase("authorization");
  r = check_credentials(&verifier, &bearer, good.view());
  EXPECT_EQ(r.error().message(), "API key: missing Authorization header");

  Request wrong_key;
  wrong_key.sign(key_from_seed('w'));
  r = check_credentials(&verifier, nullptr, wrong_key.view());
  EXPECT_EQ(r.error().code(), Code::permission_denied);
  EXPECT_TRUE(contains(r.error().message(), "does not verify")) << r.error().message();

  Request tampered;
  tampered.sign(key);
  tampered.body += "x";
  r = check_credentials(&verifier, nullptr, tampered.view());
  EXPECT_EQ(r.error().code(), Code::permission_denied);
  EXPECT_TRUE(contains(r.error().message(), "does not match the request body")) << r.error().message();
}

}  // namespace
}  // namespace dispatch::transport
