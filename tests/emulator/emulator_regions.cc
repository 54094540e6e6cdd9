#include "tests/emulator/emulator_regions.h"

namespace blueprintsync::emulator {

const std::vector<EmulatedRegion>& EmulatedRegions() {
  static const std::vector<EmulatedRegion>* const regions = new std::vector<EmulatedRegion>{
      {"ap-bangkok", "Southeast Asia (Bangkok)", false},
      {"ap-beijing", "North China (Beijing)", true},
      {"ap-chengdu", "Southwest China (Chengdu)", true},
      {"ap-guangzhou", "South China (Guangzhou)", true},
      {"ap-hongkong", "Hong Kong, Macau and Taiwan (China) (Hong Kong, China)", false},
      {"ap-jakarta", "Southeast Asia (Jakarta)", false},
      {"ap-nanjing", "East China (Nanjing)", true},
      {"ap-seoul", "Northeast Asia (Seoul)", false},
      {"ap-shanghai", "East China (Shanghai)", true},
      {"ap-singapore", "Southeast Asia (Singapore)", false},
      {"ap-tokyo", "Northeast Asia (Tokyo)", false},
      {"eu-frankfurt", "Europe (Frankfurt)", false},
      {"na-ashburn", "US East (Virginia)", false},
      {"na-siliconvalley", "US West (Silicon Valley)", false},
      {"sa-saopaulo", "South America (Sao Paulo)", false},
  };
  return *regions;
}

const EmulatedRegion* FindEmulatedRegion(absl::string_view id) {
  for (const EmulatedRegion& r : EmulatedRegions()) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

}  // namespace blueprintsync::emulator
