// PrometheusText: a minimal reader of the Prometheus text exposition format
// for tests that scrape /metrics: samples by name and labels, so a test can
// ask "how much did this series move" without matching whole lines. Handles
// what prometheus-cpp writes (no escaped quotes inside label values).
#ifndef BLUEPRINTSYNC_SERVICE_METRICS_TESTING_PROMETHEUS_TEXT_H_
#define BLUEPRINTSYNC_SERVICE_METRICS_TESTING_PROMETHEUS_TEXT_H_

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace blueprintsync::testing {

struct PrometheusSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

class PrometheusText {
 public:
  explicit PrometheusText(absl::string_view text) {
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      if (line.front() == '#') continue;
      PrometheusSample s;
      const size_t brace = line.find('{');
      const size_t space = line.rfind(' ');
      if (space == absl::string_view::npos) continue;
      if (brace != absl::string_view::npos && brace < space) {
        s.name = std::string(line.substr(0, brace));
        const size_t close = line.rfind('}');
        absl::string_view body = line.substr(brace + 1, close - brace - 1);
        for (absl::string_view pair : absl::StrSplit(body, "\",", absl::SkipEmpty())) {
          const size_t eq = pair.find("=\"");
          if (eq == absl::string_view::npos) continue;
          absl::string_view value = pair.substr(eq + 2);
          absl::ConsumeSuffix(&value, "\"");
          s.labels[std::string(pair.substr(0, eq))] = std::string(value);
        }
      } else {
        s.name = std::string(line.substr(0, space));
      }
      // strtod also reads "+Inf" and "Nan", which SimpleAtod does not.
      s.value = std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
      samples_.push_back(std::move(s));
    }
  }

  // Sum of the samples called `name` whose labels include all of `labels`
  // (0 when there is none: a series not yet created has not moved).
  double Sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    double total = 0;
    for (const PrometheusSample& s : Matching(name, labels)) total += s.value;
    return total;
  }
  std::vector<PrometheusSample> Matching(const std::string& name,
                                         const std::map<std::string, std::string>& labels) const {
    std::vector<PrometheusSample> out;
    for (const PrometheusSample& s : samples_) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        all &= it != s.labels.end() && it->second == v;
      }
      if (all) out.push_back(s);
    }
    return out;
  }
  const std::vector<PrometheusSample>& samples() const { return samples_; }

 private:
  std::vector<PrometheusSample> samples_;
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_SERVICE_METRICS_TESTING_PROMETHEUS_TEXT_H_
