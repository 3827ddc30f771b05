// RFC 9421 signatures: the RFC's Ed25519 example byte for byte, the Dispatch
// Signer's headers, and the Verifier's answer to every kind of tampering,
// replay and malformed input, with the code the protocol expects.
#include "dispatch/security/signature.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace dispatch::security {
namespace {

using ::testing::HasSubstr;
using std::chrono::seconds;
using std::chrono::system_clock;

// RFC 9421 Appendix B.1.4 test-key-ed25519.
constexpr std::string_view kRfcPrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----\n";
constexpr std::string_view kRfcPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
    "-----END PUBLIC KEY-----\n";

// A request with owned storage, viewed as HttpRequestView.
struct Request {
  std::string method = "POST";
  std::string target = "/dispatch.sdk.v1.FunctionService/Run";
  std::string authority = "endpoint.example:8000";
  std::map<std::string, std::string> headers = {{"content-type", "application/proto"}};
  std::string body = "\x0a\x03" "fib";

  HttpRequestView view() const {
    return HttpRequestView{method, target, authority,
                           [this](std::string_view name) -> std::optional<std::string_view> {
                             auto it = headers.find(std::string(name));
                             if (it == headers.end()) return std::nullopt;
                             return std::string_view(it->second);
                           },
                           body};
  }
};

// B.2 test-request, as far as B.2.6 covers it.
Request rfc_request() {
  Request r;
  r.method = "POST";
  r.target = "/foo?param=Value&Pet=dog";
  r.authority = "example.com";
  r.headers = {
      {"date", "Tue, 20 Apr 2021 02:07:55 GMT"},
      {"content-type", "application/json"},
      {"content-digest",
       "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"},
      {"content-length", "18"},
  };
  r.body = R"({"hello": "world"})";
  return r;
}

constexpr std::string_view kRfcBase =
    "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n"
    "\"@method\": POST\n"
    "\"@path\": /foo\n"
    "\"@authority\": example.com\n"
    "\"content-type\": application/json\n"
    "\"content-length\": 18\n"
    "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
    "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
constexpr std::string_view kRfcSignatureInput =
    "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
    "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
constexpr std::string_view kRfcSignature =
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
constexpr int64_t kRfcCreated = 1618884473;

TEST(Rfc9421, B26SignatureBaseAndSignatureByteForByte) {
  const Request request = rfc_request();
  const auto key = SigningKey::parse(kRfcPrivatePem).value();
  const sf::InnerList params = make_signature_params(
      {"date", "@method", "@path", "@authority", "content-type", "content-length"}, kRfcCreated,
      "test-key-ed25519", std::nullopt);
  auto base = signature_base(request.view(), params);
  ASSERT_TRUE(base.ok()) << base.error().message();
  EXPECT_EQ(*base, kRfcBase);

  sf::Dictionary input{{"sig-b26", sf::Member(params)}};
  EXPECT_EQ(sf::serialize_dictionary(input).value(), kRfcSignatureInput);
  sf::Dictionary signature{{"sig-b26", sf::Member(sf::Item{sf::ByteSequence{key.sign(*base)}, {}})}};
  EXPECT_EQ(sf::serialize_dictionary(signature).value(), kRfcSignature);
}

TEST(Rfc9421, B26VerifiesWithOurVerifier) {
  Request request = rfc_request();
  request.headers["signature-input"] = kRfcSignatureInput;
  request.headers["signature"] = kRfcSignature;
  VerifierOptions options;
  options.required_components = {"@method", "@path", "@authority", "content-type"};
  Verifier verifier({NamedKey{"test-key-ed25519", VerificationKey::parse(kRfcPublicPem).value()}},
                    options);
  const auto now = system_clock::time_point(seconds(kRfcCreated + 10));
  auto result = verifier.verify(request.view(), now);
  EXPECT_TRUE(result.ok()) << result.error().message();

  request.headers["date"] = "Tue, 20 Apr 2021 02:07:56 GMT";
  result = verifier.verify(request.view(), now);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::permission_denied);
}

// ---- Dispatch signer and verifier ----------------------------------------

constexpr int64_t kNow = 1'700'000'000;
const system_clock::time_point kNowTime{seconds(kNow)};

class Signatures : public ::testing::Test {
 protected:
  void SetUp() override {
    signed_ = Request{};
    sign(signed_, signer_);
  }
  static void sign(Request& r, const Signer& signer,
                   system_clock::time_point at = kNowTime) {
    for (const auto& [name, value] :
         signer.sign(r.method, r.target, r.authority, r.headers["content-type"], r.body, at)) {
      std::string lower;
      for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[lower] = value;
    }
  }
  // Signs with a hand-made Signature-Input member, for the cases the Signer
  // cannot produce (missing created, other components).
  static void sign_custom(Request& r, const SigningKey& key, const sf::InnerList& params,
                          std::string label = "dispatch") {
    const std::string base = signature_base(r.view(), params).value();
    r.headers["signature-input"] =
        sf::serialize_dictionary({{label, sf::Member(params)}}).value();
    r.headers["signature"] =
        sf::serialize_dictionary({{label, sf::Member(sf::Item{sf::ByteSequence{key.sign(base)}, {}})}})
            .value();
  }
  Result<void> verify(const Request& r, system_clock::time_point now = kNowTime) const {
    return verifier_.verify(r.view(), now);
  }
  void expect_refused(const Request& r, Code code, std::string_view text,
                      system_clock::time_point now = kNowTime) const {
    auto result = verify(r, now);
    ASSERT_FALSE(result.ok()) << "accepted; expected: " << text;
    EXPECT_EQ(result.error().code(), code) << result.error().message();
    EXPECT_THAT(result.error().message(), HasSubstr(text));
  }

  SigningKey key_ = SigningKey::generate();
  SigningKey other_key_ = SigningKey::generate();
  Signer signer_{key_};
  Verifier verifier_{key_.public_key()};
  Request signed_;
};

TEST_F(Signatures, SignerProducesTheDispatchHeaders) {
  const auto headers = signer_.sign("POST", "/a.B/C", "h:1", "application/proto", "body", kNowTime);
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[0].first, "Content-Digest");
  EXPECT_EQ(headers[0].second, content_digest("body"));
  EXPECT_EQ(headers[1].first, "Signature-Input");
  EXPECT_EQ(headers[1].second,
            "dispatch=(\"@method\" \"@path\" \"@authority\" \"content-type\" \"content-digest\")"
            ";created=1700000000;keyid=\"default\";alg=\"ed25519\"");
  EXPECT_EQ(headers[2].first, "Signature");
  EXPECT_THAT(headers[2].second, ::testing::StartsWith("dispatch=:"));
}

TEST_F(Signatures, SignedRequestVerifies) {
  auto result = verify(signed_);
  EXPECT_TRUE(result.ok()) << result.error().message();
}

TEST_F(Signatures, QueryAndAuthorityCaseDoNotMatterToPathAndHost) {
  Request r;
  r.target = "/dispatch.sdk.v1.FunctionService/Run?x=1";
  r.authority = "Endpoint.Example:8000";
  sign(r, signer_);
  r.authority = "endpoint.example:8000";
  r.target = "/dispatch.sdk.v1.FunctionService/Run";
  EXPECT_TRUE(verify(r).ok());
}

TEST_F(Signatures, AuthorityIsSignedWithoutItsDefaultPort) {
  // RFC 9421 2.2.3: "h:80" and "h" are one authority. A signer that derives
  // @authority from http://h/ (npm's http-message-signatures does) signs "h"
  // while the request may carry "Host: h:80"; either way round verifies.
  for (const auto& [signed_as, received_as] :
       std::vector<std::pair<std::string, std::string>>{{"h.example", "h.example:80"},
                                                        {"H.example:80", "h.example"},
                                                        {"h.example", "h.example:443"},
                                                        {"[::1]", "[::1]:80"}}) {
    Request r;
    r.authority = signed_as;
    sign(r, signer_);
    r.authority = received_as;
    auto result = verify(r);
    EXPECT_TRUE(result.ok()) << signed_as << " received as " << received_as << ": "
                             << result.error().message();
  }
  // Any other port is part of the authority.
  Request r;
  r.authority = "h.example:8080";
  sign(r, signer_);
  r.authority = "h.example";
  expect_refused(r, Code::permission_denied, "does not verify");
}

TEST_F(Signatures, ASignerThatKeptTheDefaultPortTheHostCarriesStillVerifies) {
  // Python's http-message-signatures signs the URL's netloc as written
  // ("h.example:80"); with "Host: h.example:80" that is the same authority.
  Request r;
  r.authority = "H.example:80";
  r.headers["content-digest"] = content_digest(r.body);
  const auto params = make_signature_params(dispatch_components(), kNow, "default", "ed25519");
  std::string base = signature_base(r.view(), params).value();
  const std::string line = "\"@authority\": h.example\n";
  ASSERT_NE(base.find(line), std::string::npos) << base;
  base.replace(base.find(line), line.size(), "\"@authority\": h.example:80\n");
  r.headers["signature-input"] = sf::serialize_dictionary({{"dispatch", sf::Member(params)}}).value();
  r.headers["signature"] =
      sf::serialize_dictionary({{"dispatch", sf::Member(sf::Item{sf::ByteSequence{key_.sign(base)}, {}})}}).value();
  auto result = verify(r);
  EXPECT_TRUE(result.ok()) << result.error().message();
  // Only the port the Host carries: a signature over "h.example:80" does not
  // verify for "Host: h.example".
  r.authority = "h.example";
  expect_refused(r, Code::permission_denied, "does not verify");
}

TEST_F(Signatures, TamperingWithEachCoveredComponentIsDenied) {
  const auto tampered = [&](auto change) {
    Request r = signed_;
    change(r);
    return r;
  };
  expect_refused(tampered([](Request& r) { r.method = "PUT"; }), Code::permission_denied,
                 "does not verify");
  expect_refused(tampered([](Request& r) { r.target = "/dispatch.sdk.v1.FunctionService/Other"; }),
                 Code::permission_denied, "does not verify");
  expect_refused(tampered([](Request& r) { r.authority = "attacker.example:8000"; }),
                 Code::permission_denied, "does not verify");
  expect_refused(tampered([](Request& r) { r.headers["content-type"] = "application/json"; }),
                 Code::permission_denied, "does not verify");
  expect_refused(tampered([](Request& r) {
                   r.body = "other";
                   r.headers["content-digest"] = content_digest(r.body);
                 }),
                 Code::permission_denied, "does not verify");
  expect_refused(tampered([](Request& r) { r.body += "x"; }), Code::permission_denied,
                 "Content-Digest sha-512 does not match the request body");
  expect_refused(tampered([](Request& r) {
                   std::string& s = r.headers["signature"];
                   s[12] = s[12] == 'A' ? 'B' : 'A';
                 }),
                 Code::permission_denied, "does not verify");
}

TEST_F(Signatures, ReplayOutsideTheWindowIsDenied) {
  EXPECT_TRUE(verify(signed_, kNowTime + seconds(300)).ok());
  expect_refused(signed_, Code::permission_denied, "301 s ago, older than the max age of 300 s",
                 kNowTime + seconds(301));
}

TEST_F(Signatures, CreatedInTheFutureBeyondToleranceIsDenied) {
  EXPECT_TRUE(verify(signed_, kNowTime - seconds(5)).ok());
  expect_refused(signed_, Code::permission_denied, "6 s in the future", kNowTime - seconds(6));
}

TEST_F(Signatures, WindowIsConfigurable) {
  VerifierOptions options;
  options.max_age = seconds(10);
  options.clock_tolerance = seconds(0);
  Verifier strict(key_.public_key(), options);
  EXPECT_TRUE(strict.verify(signed_.view(), kNowTime + seconds(10)).ok());
  EXPECT_FALSE(strict.verify(signed_.view(), kNowTime + seconds(11)).ok());
  EXPECT_FALSE(strict.verify(signed_.view(), kNowTime - seconds(1)).ok());
}

TEST_F(Signatures, MissingCreatedIsUnauthenticated) {
  Request r = signed_;
  sign_custom(r, key_,
              make_signature_params(dispatch_components(), std::nullopt, "default", "ed25519"));
  expect_refused(r, Code::unauthenticated, "signature 'dispatch': has no created parameter");
}

TEST_F(Signatures, ExpiredSignatureIsDenied) {
  Request r = signed_;
  auto params = make_signature_params(dispatch_components(), kNow, "default", "ed25519");
  params.params.emplace_back("expires", kNow + 60);
  sign_custom(r, key_, params);
  EXPECT_TRUE(verify(r, kNowTime + seconds(60)).ok());
  EXPECT_TRUE(verify(r, kNowTime + seconds(65)).ok());  // within the clock tolerance
  expect_refused(r, Code::permission_denied, "expired 6 s ago", kNowTime + seconds(66));
}

TEST_F(Signatures, MissingDigestIsUnauthenticated) {
  Request r = signed_;
  r.headers.erase("content-digest");
  expect_refused(r, Code::unauthenticated, "covered header \"content-digest\" is absent");
}

TEST_F(Signatures, SignedDigestOfAnotherBodyIsDenied) {
  Request r = signed_;
  r.headers["content-digest"] = content_digest("not the body");
  sign_custom(r, key_, make_signature_params(dispatch_components(), kNow, "default", "ed25519"));
  expect_refused(r, Code::permission_denied, "does not match the request body");
}

TEST_F(Signatures, Sha256DigestIsAccepted) {
  Request r;
  SignerOptions options;
  options.digest = DigestAlgorithm::sha256;
  sign(r, Signer(key_, options));
  EXPECT_THAT(r.headers["content-digest"], ::testing::StartsWith("sha-256=:"));
  EXPECT_TRUE(verify(r).ok());
}

TEST_F(Signatures, UnknownKeyidIsDenied) {
  Request r;
  SignerOptions options;
  options.keyid = "next";
  sign(r, Signer(key_, options));
  expect_refused(r, Code::permission_denied, "unknown keyid \"next\"");
}

TEST_F(Signatures, WrongKeyIsDenied) {
  Request r;
  sign(r, Signer(other_key_));
  expect_refused(r, Code::permission_denied,
                 "signature does not verify with the key(s) for keyid \"default\"");
}

TEST_F(Signatures, TwoSignaturesOneGoodIsAccepted) {
  Request bad;
  sign(bad, Signer(other_key_, SignerOptions{"other", "default", DigestAlgorithm::sha512}));
  for (bool good_first : {true, false}) {
    Request r = signed_;
    const std::string& good_input = signed_.headers.at("signature-input");
    const std::string& good_sig = signed_.headers.at("signature");
    const std::string& bad_input = bad.headers.at("signature-input");
    const std::string& bad_sig = bad.headers.at("signature");
    r.headers["signature-input"] = good_first ? good_input + ", " + bad_input : bad_input + ", " + good_input;
    r.headers["signature"] = good_first ? good_sig + ", " + bad_sig : bad_sig + ", " + good_sig;
    auto result = verify(r);
    EXPECT_TRUE(result.ok()) << result.error().message();
  }
}

TEST_F(Signatures, AllSignaturesBadReportsEach) {
  Request bad;
  sign(bad, Signer(other_key_, SignerOptions{"other", "default", DigestAlgorithm::sha512}));
  Request r = signed_;
  r.method = "PUT";  // breaks the good one too
  r.headers["signature-input"] += ", " + bad.headers.at("signature-input");
  r.headers["signature"] += ", " + bad.headers.at("signature");
  auto result = verify(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::permission_denied);
  EXPECT_THAT(result.error().message(), HasSubstr("signature 'dispatch': signature does not verify"));
  EXPECT_THAT(result.error().message(), HasSubstr("signature 'other': signature does not verify"));
}

TEST_F(Signatures, AFailingAndAnUnusableSignatureAreBothReported) {
  // The 403 of the usable one wins; the 401 reason of the other is not dropped.
  Request r = signed_;
  sign(r, Signer(other_key_));
  Request unusable = r;
  sign_custom(unusable, key_, make_signature_params(dispatch_components(), std::nullopt, "default", "ed25519"),
              "second");
  r.headers["signature-input"] += ", " + unusable.headers.at("signature-input");
  r.headers["signature"] += ", " + unusable.headers.at("signature");
  auto result = verify(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::permission_denied);
  EXPECT_THAT(result.error().message(), HasSubstr("signature 'dispatch': signature does not verify"));
  EXPECT_THAT(result.error().message(), HasSubstr("signature 'second': has no created parameter"));
}

TEST_F(Signatures, RotationTriesEveryKeyForTheKeyid) {
  Verifier rotating({NamedKey{"default", other_key_.public_key()},
                     NamedKey{"default", key_.public_key()}});
  EXPECT_TRUE(rotating.verify(signed_.view(), kNowTime).ok());
  // A signature without keyid tries every key, whatever its keyid.
  Verifier named({NamedKey{"k1", other_key_.public_key()}, NamedKey{"k2", key_.public_key()}});
  Request r = signed_;
  sign_custom(r, key_, make_signature_params(dispatch_components(), kNow, std::nullopt, "ed25519"));
  EXPECT_TRUE(named.verify(r.view(), kNowTime).ok());
  // With a keyid, only that keyid's keys.
  Request k1 = signed_;
  sign_custom(k1, key_, make_signature_params(dispatch_components(), kNow, "k1", "ed25519"));
  EXPECT_EQ(named.verify(k1.view(), kNowTime).error().code(), Code::permission_denied);
  Request k2 = signed_;
  sign_custom(k2, key_, make_signature_params(dispatch_components(), kNow, "k2", "ed25519"));
  EXPECT_TRUE(named.verify(k2.view(), kNowTime).ok());
}

TEST_F(Signatures, MissingOrMalformedHeadersAreUnauthenticated) {
  const auto with = [&](const char* name, std::optional<std::string> value) {
    Request r = signed_;
    if (value) {
      r.headers[name] = *value;
    } else {
      r.headers.erase(name);
    }
    return r;
  };
  expect_refused(with("signature", std::nullopt), Code::unauthenticated, "missing Signature header");
  expect_refused(with("signature-input", std::nullopt), Code::unauthenticated,
                 "missing Signature-Input header");
  expect_refused(with("signature-input", "dispatch=(\"@method\""), Code::unauthenticated,
                 "malformed Signature-Input header");
  expect_refused(with("signature", "dispatch=:abc"), Code::unauthenticated,
                 "malformed Signature header");
  expect_refused(with("signature", "other=:AAAA:"), Code::unauthenticated,
                 "no Signature member with this label");
  expect_refused(with("signature", "dispatch=\"text\""), Code::unauthenticated,
                 "not a byte sequence");
  expect_refused(with("signature", "dispatch=:AAAA:"), Code::unauthenticated,
                 "signature is 3 bytes");
  expect_refused(with("signature-input", "dispatch=1"), Code::unauthenticated,
                 "not an inner list");
  expect_refused(with("signature-input", ""), Code::unauthenticated, "holds no signature");
}

TEST_F(Signatures, RequiredComponentsMustBeCovered) {
  Request r = signed_;
  sign_custom(r, key_,
              make_signature_params({"@method", "@path", "@authority", "content-type"}, kNow,
                                    "default", "ed25519"));
  expect_refused(r, Code::unauthenticated, "does not cover required component \"content-digest\"");
}

TEST_F(Signatures, OnlyEd25519IsAccepted) {
  Request r = signed_;
  sign_custom(r, key_, make_signature_params(dispatch_components(), kNow, "default", "rsa-pss-sha512"));
  expect_refused(r, Code::unauthenticated, "alg is not \"ed25519\"");
}

TEST_F(Signatures, UnsupportedOrRepeatedComponentsAreUnauthenticated) {
  Request r = signed_;
  auto params = make_signature_params(dispatch_components(), kNow, "default", "ed25519");
  params.items.push_back(sf::Item{std::string("@target-uri"), {}});
  r.headers["signature-input"] = sf::serialize_dictionary({{"dispatch", sf::Member(params)}}).value();
  expect_refused(r, Code::unauthenticated, "\"@target-uri\" is not supported");

  params = make_signature_params(dispatch_components(), kNow, "default", "ed25519");
  params.items.push_back(sf::Item{std::string("@method"), {}});
  r.headers["signature-input"] = sf::serialize_dictionary({{"dispatch", sf::Member(params)}}).value();
  expect_refused(r, Code::unauthenticated, "listed twice");

  params = make_signature_params(dispatch_components(), kNow, "default", "ed25519");
  params.items[3].params.emplace_back("sf", true);
  r.headers["signature-input"] = sf::serialize_dictionary({{"dispatch", sf::Member(params)}}).value();
  expect_refused(r, Code::unauthenticated, "has parameters");
}

TEST_F(Signatures, TooManySignaturesAreRefusedBeforeAnyWork) {
  Request r = signed_;
  std::string input = r.headers["signature-input"];
  for (int i = 0; i < 8; ++i) input += ", s" + std::to_string(i) + "=(\"@method\")";
  r.headers["signature-input"] = input;
  expect_refused(r, Code::unauthenticated, "too many signatures: 9, at most 8");
}

TEST_F(Signatures, HeaderValuesWithLineBreaksCannotForgeBaseLines) {
  Request r = signed_;
  r.headers["content-type"] = "application/proto\n\"@method\": GET";
  expect_refused(r, Code::unauthenticated, "contains a line break");
}

TEST(ComponentValue, DerivedComponents) {
  Request r;
  r.target = "/p/q?a=1&b";
  r.authority = "Example.COM";
  EXPECT_EQ(component_value(r.view(), "@path").value(), "/p/q");
  EXPECT_EQ(component_value(r.view(), "@query").value(), "?a=1&b");
  EXPECT_EQ(component_value(r.view(), "@request-target").value(), "/p/q?a=1&b");
  EXPECT_EQ(component_value(r.view(), "@authority").value(), "example.com");
  r.authority = "Example.COM:80";
  EXPECT_EQ(component_value(r.view(), "@authority").value(), "example.com");
  r.authority = "example.com:443";
  EXPECT_EQ(component_value(r.view(), "@authority").value(), "example.com");
  r.authority = "example.com:8080";
  EXPECT_EQ(component_value(r.view(), "@authority").value(), "example.com:8080");
  r.authority = "example.com:4430";
  EXPECT_EQ(component_value(r.view(), "@authority").value(), "example.com:4430");
  r.authority = "[::80]";
  EXPECT_EQ(component_value(r.view(), "@authority").value(), "[::80]");
  r.target = "";
  EXPECT_EQ(component_value(r.view(), "@path").value(), "/");
  EXPECT_EQ(component_value(r.view(), "@query").value(), "?");
  r.headers["x-list"] = "  a, b \t";
  EXPECT_EQ(component_value(r.view(), "x-list").value(), "a, b");
  EXPECT_THAT(component_value(r.view(), "Content-Type").error().message(),
              HasSubstr("lowercase"));
}

}  // namespace
}  // namespace dispatch::security
