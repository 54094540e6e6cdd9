#include "service/server/tls_config.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "service/common/display.h"

namespace blueprintsync::server {
namespace {

// Larger than any certificate bundle worth loading; a mistaken path to a
// huge file fails instead of being read into memory.
constexpr std::streamsize kMaxPemBytes = 4 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// "--tls-key \"/etc/tls/tls.key\"": how a file is named in errors.
std::string Named(const std::string& flag, const std::string& path) {
  return absl::StrCat("--", flag, " \"", Shown(path), "\"");
}

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named(flag, path), ": cannot read: ", std::strerror(errno)));
  }
  std::string data(static_cast<size_t>(kMaxPemBytes) + 1, '\0');
  in.read(data.data(), kMaxPemBytes + 1);
  data.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(Named(flag, path), ": cannot read"));
  }
  if (data.size() > static_cast<size_t>(kMaxPemBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named(flag, path), ": larger than ", kMaxPemBytes, " bytes"));
  }
  return data;
}

std::unique_ptr<BIO, BioFree> MemBio(const std::string& data) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Never prompts for a passphrase (an encrypted key is reported, not asked for).
int NoPassphrase(char*, int, int, void*) { return 0; }

// The first certificate, and how many the file holds.
absl::StatusOr<std::unique_ptr<X509, X509Free>> FirstCertificate(const std::string& flag,
                                                                 const std::string& path,
                                                                 const std::string& pem) {
  auto bio = MemBio(pem);
  std::unique_ptr<X509, X509Free> first(
      PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (first == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        Named(flag, path), ": no PEM certificate (-----BEGIN CERTIFICATE-----) in it"));
  }
  return first;
}

}  // namespace

std::string TlsFiles::Mode() const {
  if (!enabled()) return "off";
  return mutual() ? "mtls" : "tls";
}

absl::StatusOr<TlsFiles> TlsFilesFromFlags(const Flags& flags) {
  TlsFiles files;
  files.cert_file = flags.String("tls-cert");
  files.key_file = flags.String("tls-key");
  files.client_ca_file = flags.String("tls-client-ca");
  auto interval = flags.Duration("tls-reload-interval", absl::Seconds(1), absl::Hours(24));
  if (!interval.ok()) return interval.status();
  files.reload_interval = *interval;
  if (absl::Status s = CheckTlsFiles(files); !s.ok()) return s;
  return files;
}

absl::Status CheckTlsFiles(const TlsFiles& files) {
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert and --tls-key must be set together (only --",
                     files.cert_file.empty() ? "tls-key" : "tls-cert", " is set)"));
  }
  if (files.mutual() && !files.enabled()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key: mTLS is TLS plus client certificates");
  }
  if (!files.enabled()) return absl::OkStatus();

  auto cert_pem = ReadPem("tls-cert", files.cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  auto cert = FirstCertificate("tls-cert", files.cert_file, *cert_pem);
  if (!cert.ok()) return cert.status();

  auto key_pem = ReadPem("tls-key", files.key_file);
  if (!key_pem.ok()) return key_pem.status();
  auto key_bio = MemBio(*key_pem);
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        Named("tls-key", files.key_file),
        ": no unencrypted PEM private key in it (-----BEGIN PRIVATE KEY----- or similar)"));
  }
  const int matches = X509_check_private_key(cert->get(), key.get());
  ERR_clear_error();
  if (matches != 1) {
    return absl::InvalidArgumentError(absl::StrCat(Named("tls-key", files.key_file),
                                                   " does not belong to the first certificate in ",
                                                   Named("tls-cert", files.cert_file)));
  }

  if (files.mutual()) {
    auto ca_pem = ReadPem("tls-client-ca", files.client_ca_file);
    if (!ca_pem.ok()) return ca_pem.status();
    auto ca = FirstCertificate("tls-client-ca", files.client_ca_file, *ca_pem);
    if (!ca.ok()) return ca.status();
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  const auto seconds = static_cast<unsigned int>(
      absl::ToInt64Seconds(absl::Ceil(files.reload_interval, absl::Seconds(1))));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.client_ca_file, seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (files.mutual()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace blueprintsync::server
