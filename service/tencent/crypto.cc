#include "service/tencent/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace blueprintsync::tencent::crypto {
namespace {

// Fetched once; OpenSSL objects fetched explicitly are thread-safe to share.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

EVP_MAC* HmacMac() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

// Per-thread contexts, reused across calls to avoid an allocation per hash.
struct ThreadContexts {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_MAC_CTX* mac = EVP_MAC_CTX_new(HmacMac());
  ~ThreadContexts() {
    EVP_MD_CTX_free(md);
    EVP_MAC_CTX_free(mac);
  }
};

ThreadContexts& Contexts() {
  thread_local ThreadContexts contexts;
  return contexts;
}

[[noreturn]] void Die(const char* what) {
  // Only reachable if the OpenSSL installation itself is broken.
  std::fprintf(stderr, "fatal: OpenSSL %s failed\n", what);
  std::abort();
}

}  // namespace

Digest Sha256(std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = Contexts().md;
  if (ctx == nullptr || Sha256Md() == nullptr || EVP_DigestInit_ex(ctx, Sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size()) {
    Die("SHA-256");
  }
  return out;
}

Digest HmacSha256(std::string_view key, std::string_view data) {
  Digest out{};
  size_t len = 0;
  EVP_MAC_CTX* ctx = Contexts().mac;
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end(),
  };
  if (ctx == nullptr ||
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) !=
          1 ||
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(ctx, out.data(), &len, out.size()) != 1 || len != out.size()) {
    Die("HMAC-SHA256");
  }
  return out;
}

std::string HexLower(const Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(digest.size() * 2, '\0');
  for (size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace blueprintsync::tencent::crypto
