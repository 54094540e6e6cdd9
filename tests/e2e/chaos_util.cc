#include "tests/e2e/chaos_util.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  int64_t n = 0;
  if (v == nullptr || !absl::SimpleAtoi(v, &n)) return fallback;
  return n;
}

int64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, prefix)) continue;
    absl::string_view rest =
        absl::StripAsciiWhitespace(absl::string_view(line).substr(prefix.size()));
    rest = absl::StripSuffix(rest, "kB");
    rest = absl::StripAsciiWhitespace(rest);
    int64_t kb = 0;
    if (absl::SimpleAtoi(rest, &kb)) return kb;
  }
  return -1;
}

ExecutionAudit AuditExecutions(const std::vector<v1::SyncJob>& jobs,
                               const std::vector<EmulatorSyncSubmission>& submissions) {
  ExecutionAudit out;
  std::map<std::string, size_t> submission_of_id;
  for (size_t i = 0; i < submissions.size(); ++i) {
    for (const std::string& id : submissions[i].destination_blueprint_ids) submission_of_id[id] = i;
  }
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  auto describe = [&](size_t i) {
    const EmulatorSyncSubmission& s = submissions[i];
    return absl::StrCat(
        "SyncBlueprint ", s.region, "/", s.blueprint_id, " -> [",
        absl::StrJoin(s.destination_regions, ","), "] at ",
        absl::FormatTime("%H:%M:%E3S", absl::FromUnixMillis(s.time_ms), absl::LocalTimeZone()),
        " (RequestId ", s.request_id, ", copies ", absl::StrJoin(s.destination_blueprint_ids, ","),
        ")");
  };

  std::vector<std::string> owner(submissions.size());
  for (const v1::SyncJob& job : jobs) {
    int& executed = out.executed[job.name()];
    std::set<size_t> mine;
    std::vector<std::string> job_regions;
    for (const v1::Destination& d : job.destinations()) {
      job_regions.push_back(d.region());
      if (d.blueprint_id().empty()) continue;
      auto it = submission_of_id.find(d.blueprint_id());
      if (it == submission_of_id.end()) {
        out.problems.push_back(absl::StrCat(job.name(), " tracks ", d.region(), "/",
                                            d.blueprint_id(),
                                            ", which no executed SyncBlueprint created"));
        continue;
      }
      mine.insert(it->second);
    }
    if (mine.size() > 1) {
      out.problems.push_back(absl::StrCat(job.name(), " tracks copies of ", mine.size(),
                                          " different SyncBlueprint calls"));
    }
    for (size_t i : mine) {
      const EmulatorSyncSubmission& s = submissions[i];
      if (s.region != job.source_region() || s.blueprint_id != job.blueprint_id() ||
          sorted(s.destination_regions) != sorted(job_regions)) {
        out.problems.push_back(absl::StrCat(job.name(), " (", job.source_region(), "/",
                                            job.blueprint_id(),
                                            ") tracks copies of another "
                                            "request: ",
                                            describe(i)));
      }
      if (!owner[i].empty() && owner[i] != job.name()) {
        out.problems.push_back(absl::StrCat("jobs ", owner[i], " and ", job.name(),
                                            " both track the copies of one call (one adopted "
                                            "copies it did not create): ",
                                            describe(i)));
      } else {
        owner[i] = job.name();
      }
    }
    executed += static_cast<int>(mine.size());
  }

  // Executions no job tracks.
  for (size_t i = 0; i < submissions.size(); ++i) {
    if (!owner[i].empty()) continue;
    ++out.orphans;
    const EmulatorSyncSubmission& s = submissions[i];
    const absl::Time t = absl::FromUnixMillis(s.time_ms);
    // The job it most plausibly belongs to: same request, created before the
    // call (1 s of slack), not ended before it; of those the oldest, since a
    // source's jobs are submitted in the order they were created.
    const v1::SyncJob* best = nullptr;
    for (const v1::SyncJob& job : jobs) {
      std::vector<std::string> job_regions;
      for (const v1::Destination& d : job.destinations()) job_regions.push_back(d.region());
      if (s.region != job.source_region() || s.blueprint_id != job.blueprint_id() ||
          sorted(s.destination_regions) != sorted(job_regions)) {
        continue;
      }
      if (ToTime(job.create_time()) > t + absl::Seconds(1)) continue;
      if (IsSet(job.end_time()) && ToTime(job.end_time()) + absl::Seconds(1) < t) continue;
      if (best == nullptr || ToTime(job.create_time()) < ToTime(best->create_time())) best = &job;
    }
    if (best != nullptr) {
      ++out.executed[best->name()];
      out.problems.push_back(absl::StrCat("no job tracks the copies of ", describe(i),
                                          "; it belongs to ", best->name(), " (",
                                          v1::SyncJob::State_Name(best->state()), ", now ",
                                          out.executed[best->name()], " executed call(s))"));
    } else {
      out.problems.push_back(
          absl::StrCat("no job tracks the copies of ", describe(i), " and no job matches it"));
    }
  }
  for (const auto& [name, n] : out.executed) {
    out.max_executed_per_job = std::max(out.max_executed_per_job, n);
  }
  return out;
}

HealthProber::HealthProber(std::shared_ptr<grpc::Channel> channel, absl::Duration interval)
    : channel_(std::move(channel)), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

HealthProber::~HealthProber() { Stop(); }

void HealthProber::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void HealthProber::Loop() {
  do {  // at least one check, however soon Stop() comes
    const absl::Time start = absl::Now();
    absl::StatusOr<int> r = HealthCheck(channel_, "", absl::Seconds(10));
    const absl::Duration latency = absl::Now() - start;
    {
      absl::MutexLock lock(&mu_);
      ++checks_;
      max_latency_ = std::max(max_latency_, latency);
      if (r.ok() && *r == 1) {
        ++serving_;
      } else if (failures_.size() < 5) {
        failures_.push_back(r.ok() ? absl::StrCat("status ", *r) : r.status().ToString());
      }
    }
    absl::SleepFor(interval_);
  } while (!stop_);
}

int64_t HealthProber::checks() const {
  absl::MutexLock lock(&mu_);
  return checks_;
}

int64_t HealthProber::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

absl::Duration HealthProber::max_latency() const {
  absl::MutexLock lock(&mu_);
  return max_latency_;
}

std::vector<std::string> HealthProber::failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

int64_t CountLinesInFiles(const std::string& dir, const std::string& prefix,
                          const std::string& suffix, const std::string& needle) {
  int64_t n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, prefix) || !absl::EndsWith(name, suffix)) continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) n += absl::StrContains(line, needle) ? 1 : 0;
  }
  return n;
}

std::string FormatCounts(const std::map<std::string, int64_t>& counts) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : counts) parts.push_back(absl::StrCat(k, "=", v));
  return absl::StrJoin(parts, " ");
}

}  // namespace blueprintsync::testing
