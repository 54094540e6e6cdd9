// Thin, allocation-light wrappers over OpenSSL 3 for the two primitives TC3
// signing needs. The EVP_MD / EVP_MAC objects are fetched once per process
// (implicit fetching on every call costs more than the hash itself).
// Shared by the signer and by the emulator's independent verifier.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_CRYPTO_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_CRYPTO_H_

#include <array>
#include <string>
#include <string_view>

namespace blueprintsync::tencent::crypto {

using Digest = std::array<unsigned char, 32>;

Digest Sha256(std::string_view data);
Digest HmacSha256(std::string_view key, std::string_view data);
std::string HexLower(const Digest& digest);
inline std::string Sha256Hex(std::string_view data) { return HexLower(Sha256(data)); }
inline std::string_view AsStringView(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}
// Constant-time comparison, for verifying signatures.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace blueprintsync::tencent::crypto

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_CRYPTO_H_
