#include "bench/bench_util.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "service/jobs/job_state.h"

#ifndef BPS_BENCH_EMULATOR
#error "BPS_BENCH_EMULATOR must name the lighthouse-emulator binary"
#endif
#ifndef BPS_BENCH_SERVER
#error "BPS_BENCH_SERVER must name the blueprint-syncd binary"
#endif

namespace blueprintsync::bench {
namespace {

// The destinations a finished job of the fill had; realistic variety keeps
// the SQLite indexes (state, source_region, blueprint_id) from degenerating.
constexpr const char* kOverseas[] = {
    "ap-bangkok", "ap-hongkong",  "ap-jakarta", "ap-seoul",         "ap-singapore",
    "ap-tokyo",   "eu-frankfurt", "na-ashburn", "na-siliconvalley", "sa-saopaulo"};

std::string RandomUuid(std::mt19937_64& rng) {
  const uint64_t hi = (rng() & 0xffffffffffff0fffULL) | 0x4000ULL;
  const uint64_t lo = (rng() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

std::string BlueprintId(std::mt19937_64& rng) {
  static constexpr char kChars[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id = "lhbp-";
  for (int i = 0; i < 8; ++i) id += kChars[rng() % 36];
  return id;
}

size_t WriteToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

absl::StatusOr<std::string> HttpCall(const std::string& url, const std::string* post_body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  struct curl_slist* headers = nullptr;
  if (post_body != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(url, ": ", curl_easy_strerror(rc)));
  }
  if (status != 200) {
    return absl::UnavailableError(absl::StrCat(url, ": HTTP ", status, ": ", body));
  }
  return body;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Child>> Child::Spawn(
    const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env, const std::string& stdout_path,
    const std::string& stderr_path) {
  const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0 || err < 0) {
    if (out >= 0) close(out);
    if (err >= 0) close(err);
    return absl::InternalError(absl::StrCat("cannot create ", stdout_path, ": ", strerror(errno)));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(out, 1);
    dup2(err, 2);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(out);
  close(err);
  return std::unique_ptr<Child>(new Child(pid, stdout_path));
}

Child::~Child() {
  if (reaped_) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
}

bool Child::Running() {
  if (reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

absl::StatusOr<std::string> Child::WaitForLine(const std::string& needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::ifstream in(stdout_path_);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(needle) != std::string::npos && !in.eof()) return line;
    }
    if (!Running()) {
      return absl::FailedPreconditionError(
          absl::StrCat("process exited before printing \"", needle, "\" (see ", stdout_path_, ")"));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no \"", needle, "\" in ", stdout_path_));
    }
    absl::SleepFor(absl::Microseconds(500));
  }
}

int Child::Stop(absl::Duration timeout) {
  if (reaped_) return 0;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  reaped_ = true;
  return status;
}

std::string EmulatorBinary() { return BPS_BENCH_EMULATOR; }
std::string ServerBinary() {
  // Another build of the server (e.g. an earlier commit's) for before/after runs.
  if (const char* other = std::getenv("BPS_BENCH_SERVER"); other != nullptr && *other != '\0') {
    return other;
  }
  return BPS_BENCH_SERVER;
}

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp %s: %s\n", tmpl.c_str(), strerror(errno));
    std::abort();
  }
  path_ = tmpl;
}

TempDir TempDir::InMemory(const std::string& prefix) {
  TempDir d;
  std::string tmpl = absl::StrCat("/dev/shm/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return TempDir(prefix);  // no tmpfs: fall back to disk
  d.path_ = tmpl;
  return d;
}

TempDir::~TempDir() {
  if (path_.empty() || std::getenv("BPS_BENCH_KEEP") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<Emulator> StartEmulator(const std::vector<std::string>& extra_args,
                                       const std::string& log_dir) {
  std::vector<std::string> argv = {EmulatorBinary(), "--listen", "127.0.0.1:0", "--quiet"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto child = Child::Spawn(argv, {}, log_dir + "/emulator.out", log_dir + "/emulator.err");
  if (!child.ok()) return child.status();
  auto line = (*child)->WaitForLine("listening on ", absl::Seconds(20));
  if (!line.ok()) return line.status();
  Emulator e;
  e.url = line->substr(line->find("http://"));
  e.child = *std::move(child);
  return e;
}

absl::StatusOr<Server> StartServer(
    const std::string& emulator_url, const std::string& store_spec,
    const std::vector<std::string>& extra_args, const std::string& log_dir,
    const std::vector<std::pair<std::string, std::string>>& extra_env) {
  // Metrics stay on (their cost is part of the service) but on a port of
  // their own: several servers may run at once.
  std::vector<std::string> argv = {
      ServerBinary(), "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
      "--lighthouse-endpoint=" + emulator_url, "--store=" + store_spec};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  std::vector<std::pair<std::string, std::string>> env = {
      {"TENCENTCLOUD_SECRET_ID", kSecretId},
      {"TENCENTCLOUD_SECRET_KEY", kSecretKey},
      {"TENCENTCLOUD_CREDENTIALS_FILE", "/nonexistent"}};
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  auto child = Child::Spawn(argv, env, log_dir + "/server.out", log_dir + "/server.err");
  if (!child.ok()) return child.status();
  auto line = (*child)->WaitForLine("\"msg\":\"serving\"", absl::Seconds(60));
  if (!line.ok()) return line.status();
  const std::string key = "\"address\":\"";
  const size_t at = line->find(key);
  if (at == std::string::npos) return absl::InternalError("no address in " + *line);
  const size_t start = at + key.size();
  Server s;
  s.address = line->substr(start, line->find('"', start) - start);
  s.startup = absl::Now() - (*child)->spawn_time();
  s.child = *std::move(child);
  return s;
}

absl::StatusOr<std::string> HttpGet(const std::string& url) { return HttpCall(url, nullptr); }
absl::StatusOr<std::string> HttpPost(const std::string& url, const std::string& body) {
  return HttpCall(url, &body);
}

absl::Status FillFinishedJobs(jobs::JobStore* store, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Spread over the last 30 days, oldest first (the store's sequence is insertion order).
  const absl::Time start = absl::Now() - absl::Hours(24 * 30);
  const absl::Duration step = absl::Hours(24 * 30) / std::max(count, 1);
  for (int i = 0; i < count; ++i) {
    const absl::Time created = start + step * i;
    const char* source = kOverseas[rng() % 10];
    const char* d1 = kOverseas[rng() % 10];
    const char* d2 = kOverseas[rng() % 10];
    if (d1 == source) d1 = source == kOverseas[0] ? kOverseas[1] : kOverseas[0];
    if (d2 == source || d2 == d1) {
      for (const char* r : kOverseas) {
        if (r != source && r != d1) {
          d2 = r;
          break;
        }
      }
    }
    v1::SyncBlueprintRequest request;
    request.set_source_region(source);
    request.set_blueprint_id(BlueprintId(rng));
    request.add_destination_regions(d1);
    request.add_destination_regions(d2);
    request.set_request_id(RandomUuid(rng));

    jobs::JobRecord rec;
    v1::SyncJob* job = rec.mutable_job();
    job->set_name(absl::StrCat("syncJobs/", RandomUuid(rng)));
    job->set_state(v1::SyncJob::SUCCEEDED);
    job->set_source_region(request.source_region());
    job->set_blueprint_id(request.blueprint_id());
    job->set_request_id(request.request_id());
    job->set_upstream_request_id(RandomUuid(rng));
    const absl::Time submitted = created + absl::Milliseconds(60);
    const absl::Time ended = created + absl::Minutes(4);
    for (const auto& region : request.destination_regions()) {
      v1::Destination* d = job->add_destinations();
      d->set_region(region);
      d->set_blueprint_id(BlueprintId(rng));
      d->set_state(v1::Destination::SUCCEEDED);
      d->set_blueprint_state("NORMAL");
      *d->mutable_update_time() = jobs::ToProto(ended);
    }
    *job->mutable_create_time() = jobs::ToProto(created);
    *job->mutable_update_time() = jobs::ToProto(ended);
    *job->mutable_submit_time() = jobs::ToProto(submitted);
    *job->mutable_end_time() = jobs::ToProto(ended);
    *job->mutable_deadline() = jobs::ToProto(created + absl::Hours(6));
    rec.set_phase(jobs::JobRecord::SUBMITTED);
    rec.set_request_fingerprint(jobs::RequestFingerprint(request));
    *rec.mutable_submit_attempt_time() = jobs::ToProto(created + absl::Milliseconds(5));
    rec.set_submit_attempts(1);
    auto created_or = store->CreateJob(rec);
    if (!created_or.ok()) return created_or.status();
  }
  return absl::OkStatus();
}

absl::Status BuildSqliteStore(const std::string& path, int count) {
  TempDir scratch = TempDir::InMemory("bps-fill");
  const std::string tmp_db = scratch.path() + "/jobs.db";
  {
    auto store = jobs::OpenSqliteJobStore(tmp_db);
    if (!store.ok()) return store.status();
    if (absl::Status s = FillFinishedJobs(store->get(), count, /*seed=*/count); !s.ok()) return s;
  }  // closing the last connection checkpoints the WAL into the main file
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::filesystem::copy_file(tmp_db, path, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(absl::StrCat("copy to ", path, ": ", ec.message()));
  for (const char* suffix : {"-wal", "-shm"}) {
    if (std::filesystem::exists(tmp_db + suffix)) {
      return absl::InternalError(absl::StrCat(tmp_db, suffix, " left behind after close"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ReadStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return absl::NotFoundError(absl::StrCat(field, " not in /proc/", pid, "/status"));
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after ')'.
  const size_t close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(close_paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtod(field.c_str(), nullptr);  // utime, stime
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(values.size() - 1, lo + 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

double Median(std::vector<double> values) { return Percentile(std::move(values), 50); }

void PrintRow(const Row& row) {
  auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  std::printf("ROW\t%s\t%s\t%s\t%s\t%s\t%s\n", row.figure.c_str(), dash(row.value).c_str(),
              dash(row.reference).c_str(), dash(row.ratio).c_str(), dash(row.target).c_str(),
              dash(row.met).c_str());
  std::fflush(stdout);
}

std::string Fixed(double v, int decimals) { return absl::StrFormat("%.*f", decimals, v); }

std::string MetText(bool met) { return met ? "yes" : "NO"; }

}  // namespace blueprintsync::bench
