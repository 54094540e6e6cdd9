#include "client/request_id.h"

#include <cstdint>
#include <string>

#include "absl/random/random.h"
#include "absl/random/uniform_int_distribution.h"

namespace blueprintsync::cli {

std::string NewRequestId(absl::BitGenRef gen) {
  uint8_t bytes[16];
  for (uint8_t& b : bytes) b = absl::Uniform<uint8_t>(gen);
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0f]);
  }
  return out;
}

std::string NewRequestId() {
  absl::BitGen gen;  // seeded from OS entropy on construction
  return NewRequestId(gen);
}

}  // namespace blueprintsync::cli
