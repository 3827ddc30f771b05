// RFC 9421 signature bases, the Dispatch Signer and Verifier, and bearer keys.
// The verifier separates "this is not a usable signature" (401, the client
// sent something malformed or incomplete) from "this signature fails a check"
// (403), as the Dispatch protocol's status mapping expects, and reports every
// signature's failure so an operator can see why a request was refused.
#include "dispatch/security/signature.h"

#include <sodium.h>

#include <algorithm>
#include <set>

#include "security/base64.h"

namespace dispatch::security {
namespace {

Error unauthenticated(std::string message) { return Error(Code::unauthenticated, std::move(message)); }
Error denied(std::string message) { return Error(Code::permission_denied, std::move(message)); }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool has_line_break(std::string_view s) {
  return s.find('\n') != std::string_view::npos || s.find('\r') != std::string_view::npos;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// RFC 9421 2.2.3: the authority with its host lowercased and its default port
// omitted (RFC 9110 4.2.3), as an RFC-following signer derives it from the
// URL while its client may still send "Host: h:80". A server behind a TLS
// proxy cannot tell http from https, so both default ports are dropped;
// only an http URL on port 443 (or https on 80) then signs differently.
std::string normalized_authority(std::string_view authority) {
  std::string out = to_lower(authority);
  for (std::string_view port : {std::string_view(":80"), std::string_view(":443")}) {
    if (out.size() > port.size() && std::string_view(out).substr(out.size() - port.size()) == port) {
      out.resize(out.size() - port.size());
      break;
    }
  }
  return out;
}

// Which @authority a signature base holds: the normalized one, or the Host
// as received (lowercased), which signers that skip the normalization sign.
enum class AuthorityForm { normalized, as_received };

int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

Result<std::string> component_value_in(const HttpRequestView& request, std::string_view component,
                                       AuthorityForm form) {
  std::string value;
  if (!component.empty() && component[0] == '@') {
    const std::string_view target = request.target;
    const size_t query = target.find('?');
    if (component == "@method") {
      value = std::string(request.method);
    } else if (component == "@path") {
      value = std::string(target.substr(0, query));
      if (value.empty()) value = "/";  // RFC 9421 2.2.6: empty path is "/"
    } else if (component == "@query") {
      value = query == std::string_view::npos ? "?" : std::string(target.substr(query));
    } else if (component == "@request-target") {
      value = std::string(target);
    } else if (component == "@authority") {
      value = form == AuthorityForm::normalized ? normalized_authority(request.authority)
                                                : to_lower(request.authority);
    } else {
      return unauthenticated("covered component " + quoted(component) + " is not supported");
    }
  } else {
    if (component.empty() || to_lower(component) != component) {
      return unauthenticated("covered component " + quoted(component) +
                             " must be a lowercase header name");
    }
    std::optional<std::string_view> header;
    if (request.header) header = request.header(component);
    if (!header) {
      return unauthenticated("covered header " + quoted(component) + " is absent from the request");
    }
    value = std::string(trim_ows(*header));
  }
  // A line break would let one component forge another's line in the base.
  if (has_line_break(value)) {
    return unauthenticated("covered component " + quoted(component) + " contains a line break");
  }
  return value;
}

Result<std::string> signature_base_in(const HttpRequestView& request, const sf::InnerList& params,
                                      AuthorityForm form) {
  std::string base;
  std::set<std::string_view> seen;
  for (const sf::Item& item : params.items) {
    const auto* name = std::get_if<std::string>(&item.value);
    if (!name) return unauthenticated("a covered component is not a string");
    if (!item.params.empty()) {
      return unauthenticated("covered component " + quoted(*name) +
                             " has parameters, which are not supported");
    }
    if (!seen.insert(*name).second) {
      return unauthenticated("covered component " + quoted(*name) + " is listed twice");
    }
    auto value = component_value_in(request, *name, form);
    if (!value) return std::move(value).error();
    base += quoted(*name);
    base += ": ";
    base += *value;
    base += '\n';
  }
  auto serialized = sf::serialize_inner_list(params);
  if (!serialized) return unauthenticated(serialized.error().message());
  base += "\"@signature-params\": ";
  base += *serialized;
  return base;
}

}  // namespace

Result<std::string> component_value(const HttpRequestView& request, std::string_view component) {
  return component_value_in(request, component, AuthorityForm::normalized);
}

Result<std::string> signature_base(const HttpRequestView& request, const sf::InnerList& params) {
  return signature_base_in(request, params, AuthorityForm::normalized);
}

sf::InnerList make_signature_params(const std::vector<std::string>& components,
                                    std::optional<int64_t> created,
                                    std::optional<std::string> keyid,
                                    std::optional<std::string> alg) {
  sf::InnerList list;
  for (const auto& component : components) list.items.push_back(sf::Item{component, {}});
  if (created) list.params.emplace_back("created", *created);
  if (keyid) list.params.emplace_back("keyid", std::move(*keyid));
  if (alg) list.params.emplace_back("alg", std::move(*alg));
  return list;
}

// ---- Signer --------------------------------------------------------------

Signer::Signer(SigningKey key, SignerOptions options)
    : key_(std::move(key)), options_(std::move(options)) {
  // Validate once, so sign() cannot produce an unparsable header.
  sf::Dictionary probe{{options_.label, sf::Member(sf::Item{options_.keyid, {}})}};
  if (auto ok = sf::serialize_dictionary(probe); !ok) {
    throw Error(Code::invalid_argument, "signer: bad label or keyid: " + ok.error().message());
  }
}

std::vector<std::pair<std::string, std::string>> Signer::sign(
    std::string_view method, std::string_view target, std::string_view authority,
    std::string_view content_type, std::string_view body,
    std::chrono::system_clock::time_point now) const {
  const std::string digest = content_digest(body, options_.digest);
  HttpRequestView request{method, target, authority,
                          [&](std::string_view name) -> std::optional<std::string_view> {
                            if (name == "content-type") return content_type;
                            if (name == "content-digest") return std::string_view(digest);
                            return std::nullopt;
                          },
                          body};
  sf::InnerList params =
      make_signature_params(dispatch_components(), unix_seconds(now), options_.keyid, "ed25519");
  // Fails only for a method, target or content type with a line break: a
  // programmer error in the transport, reported by the thrown Error.
  const std::string base = signature_base(request, params).value();
  const std::string signature = key_.sign(base);

  sf::Dictionary input{{options_.label, sf::Member(std::move(params))}};
  sf::Dictionary sig{{options_.label, sf::Member(sf::Item{sf::ByteSequence{signature}, {}})}};
  return {{"Content-Digest", digest},
          {"Signature-Input", sf::serialize_dictionary(input).value()},
          {"Signature", sf::serialize_dictionary(sig).value()}};
}

// ---- Verifier ------------------------------------------------------------

Verifier::Verifier(VerificationKey key, VerifierOptions options)
    : Verifier(std::vector<NamedKey>{NamedKey{"default", std::move(key)}}, std::move(options)) {}

Verifier::Verifier(std::vector<NamedKey> keys, VerifierOptions options)
    : keys_(std::move(keys)), options_(std::move(options)) {}

Result<void> Verifier::verify(const HttpRequestView& request,
                              std::chrono::system_clock::time_point now) const {
  std::optional<std::string_view> input_header, signature_header;
  if (request.header) {
    input_header = request.header("signature-input");
    signature_header = request.header("signature");
  }
  if (!input_header) return unauthenticated("missing Signature-Input header");
  if (!signature_header) return unauthenticated("missing Signature header");
  auto inputs = sf::parse_dictionary(*input_header);
  if (!inputs) return unauthenticated("malformed Signature-Input header: " + inputs.error().message());
  auto signatures = sf::parse_dictionary(*signature_header);
  if (!signatures) {
    return unauthenticated("malformed Signature header: " + signatures.error().message());
  }
  if (inputs->empty()) return unauthenticated("Signature-Input header holds no signature");
  if (inputs->size() > options_.max_signatures) {
    return unauthenticated("too many signatures: " + std::to_string(inputs->size()) +
                           ", at most " + std::to_string(options_.max_signatures));
  }

  const int64_t now_s = unix_seconds(now);
  std::string unusable, failed;  // reasons, by the status they lead to
  auto note = [](std::string& list, const std::string& reason) {
    if (!list.empty()) list += "; ";
    list += reason;
  };
  for (const auto& [label, member] : *inputs) {
    const std::string prefix = "signature '" + label + "': ";
    const auto* params = std::get_if<sf::InnerList>(&member);
    if (!params) {
      note(unusable, prefix + "Signature-Input member is not an inner list");
      continue;
    }
    const sf::Member* sig_member = sf::find(*signatures, label);
    const auto* sig_item = sig_member ? std::get_if<sf::Item>(sig_member) : nullptr;
    const auto* sig_bytes = sig_item ? std::get_if<sf::ByteSequence>(&sig_item->value) : nullptr;
    if (!sig_member) {
      note(unusable, prefix + "no Signature member with this label");
      continue;
    }
    if (!sig_bytes) {
      note(unusable, prefix + "Signature member is not a byte sequence");
      continue;
    }
    auto result = verify_one(request, label, *params, sig_bytes->bytes, now_s);
    if (result) return result;
    note(result.error().code() == Code::permission_denied ? failed : unusable,
         prefix + result.error().message());
  }
  // A usable signature that fails outranks unusable ones (403), but the
  // message keeps every signature's reason.
  if (!failed.empty()) return denied(unusable.empty() ? failed : failed + "; " + unusable);
  return unauthenticated(unusable);
}

Result<void> Verifier::verify_one(const HttpRequestView& request, std::string_view,
                                  const sf::InnerList& params, std::string_view signature,
                                  int64_t now) const {
  // Is this a usable signature? (401 otherwise)
  std::set<std::string_view> covered;
  for (const sf::Item& item : params.items) {
    if (const auto* name = std::get_if<std::string>(&item.value)) covered.insert(*name);
  }
  for (const std::string& required : options_.required_components) {
    if (!covered.count(required)) {
      return unauthenticated("does not cover required component " + quoted(required));
    }
  }
  const sf::BareItem* created_param = sf::find(params.params, "created");
  if (!created_param) return unauthenticated("has no created parameter");
  const auto* created = std::get_if<int64_t>(created_param);
  if (!created) return unauthenticated("created is not an integer");
  std::optional<int64_t> expires;
  if (const sf::BareItem* p = sf::find(params.params, "expires")) {
    const auto* value = std::get_if<int64_t>(p);
    if (!value) return unauthenticated("expires is not an integer");
    expires = *value;
  }
  if (const sf::BareItem* p = sf::find(params.params, "alg")) {
    const auto* alg = std::get_if<std::string>(p);
    if (!alg || *alg != "ed25519") {
      return unauthenticated("alg is not \"ed25519\", the only algorithm accepted");
    }
  }
  std::optional<std::string_view> keyid;
  if (const sf::BareItem* p = sf::find(params.params, "keyid")) {
    const auto* value = std::get_if<std::string>(p);
    if (!value) return unauthenticated("keyid is not a string");
    keyid = *value;
  }
  if (signature.size() != crypto_sign_BYTES) {
    return unauthenticated("signature is " + std::to_string(signature.size()) +
                           " bytes, an Ed25519 signature is 64");
  }
  auto base = signature_base(request, params);
  if (!base) return std::move(base).error();

  // Does it pass every check? (403 otherwise)
  const int64_t tolerance = options_.clock_tolerance.count();
  if (*created > now + tolerance) {
    return denied("created is " + std::to_string(*created - now) +
                  " s in the future (clock tolerance " + std::to_string(tolerance) + " s)");
  }
  if (now - *created > options_.max_age.count()) {
    return denied("created " + std::to_string(now - *created) +
                  " s ago, older than the max age of " +
                  std::to_string(options_.max_age.count()) + " s");
  }
  if (expires && now > *expires + tolerance) {
    return denied("expired " + std::to_string(now - *expires) + " s ago");
  }
  // A signer that skipped the normalization signed a default port the Host
  // still carries ("h:80"): the same authority, so that base is tried too.
  std::optional<std::string> as_received;
  if (covered.count("@authority") && normalized_authority(request.authority) != to_lower(request.authority)) {
    auto other = signature_base_in(request, params, AuthorityForm::as_received);
    if (other) as_received = std::move(*other);
  }
  bool any_key = false, verified = false;
  for (const NamedKey& named : keys_) {
    if (keyid && named.keyid != *keyid) continue;
    any_key = true;
    if (named.key.verify(*base, signature) || (as_received && named.key.verify(*as_received, signature))) {
      verified = true;
      break;
    }
  }
  if (!any_key) {
    return denied(keyid ? "unknown keyid " + quoted(*keyid) : "no verification key configured");
  }
  if (!verified) {
    return denied(keyid ? "signature does not verify with the key(s) for keyid " + quoted(*keyid)
                        : "signature does not verify with any configured key");
  }
  if (covered.count("content-digest")) {
    return verify_content_digest(request.header("content-digest"), request.body);
  }
  return {};
}

// ---- BearerKeys ----------------------------------------------------------

BearerKeys::BearerKeys(std::vector<std::string> keys) {
  for (const auto& key : keys) {
    if (!key.empty()) digests_.push_back(digest_bytes(key, DigestAlgorithm::sha256));
  }
}

Result<void> BearerKeys::authorize(std::optional<std::string_view> authorization) const {
  if (!authorization) return unauthenticated("missing Authorization header");
  std::string_view value = trim_ows(*authorization);
  constexpr std::string_view scheme = "bearer";
  if (value.size() <= scheme.size() || to_lower(value.substr(0, scheme.size())) != scheme ||
      value[scheme.size()] != ' ') {
    return unauthenticated("Authorization is not a Bearer token");
  }
  const std::string_view token = trim_ows(value.substr(scheme.size()));
  if (token.empty()) return unauthenticated("Authorization is not a Bearer token");
  // Compare digests, not keys: equal lengths, and every key is compared so
  // timing says nothing about which key (or how much of one) matched.
  detail::ensure_sodium();
  const std::string digest = digest_bytes(token, DigestAlgorithm::sha256);
  int matched = 0;
  for (const std::string& known : digests_) {
    matched |= sodium_memcmp(known.data(), digest.data(), digest.size()) == 0;
  }
  if (!matched) return unauthenticated("unknown API key");
  return {};
}

bool BearerKeys::check(std::string_view authorization) const {
  return authorize(authorization).ok();
}

}  // namespace dispatch::security
