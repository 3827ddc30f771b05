// Test-only: a self-signed certificate made at run time, for TLS servers in
// tests (the raw multi-port server, a gRPC C++ server with SSL credentials)
// and the ca_file of the clients that call them.
//
// Not for: anything but tests (a fresh key each time, valid for a day).
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace dispatch::testing {

// A self-signed certificate for 127.0.0.1 and localhost (P-256), in PEM.
struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;

  static TestCertificate make() {
    auto fail = [](const char* what) { throw std::runtime_error(std::string("test certificate: ") + what); };
    EVP_PKEY* key = EVP_EC_gen("P-256");
    if (!key) fail("EVP_EC_gen");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509V3_CTX ctx;
      X509V3_set_ctx_nodb(&ctx);
      X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      if (!ext) fail("X509V3_EXT_conf_nid");
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    if (X509_sign(x, key, EVP_sha256()) == 0) fail("X509_sign");
    TestCertificate out;
    out.cert_pem = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, x); });
    out.key_pem = to_pem([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
    X509_free(x);
    EVP_PKEY_free(key);
    return out;
  }

  // Writes the certificate where a client's ca_file can point; returns the path.
  std::string write_cert(const std::string& path) const {
    std::ofstream(path) << cert_pem;
    return path;
  }

 private:
  template <typename Write>
  static std::string to_pem(Write write) {
    BIO* b = BIO_new(BIO_s_mem());
    if (write(b) != 1) throw std::runtime_error("test certificate: PEM_write");
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return out;
  }
};

}  // namespace dispatch::testing
