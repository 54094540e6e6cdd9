#include "client/cli.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "client/cli_options.h"
#include "client/exit_codes.h"
#include "client/job_format.h"
#include "client/printable.h"
#include "client/progress_view.h"
#include "client/request_id.h"
#include "client/rpc_error.h"
#include "google/protobuf/empty.pb.h"

namespace blueprintsync::cli {
namespace {

namespace v1 = ::blueprintsync::v1;

// How often a call that creates a job is sent, in all, when its answer is
// lost; the help text of sync states these numbers.
constexpr int kMaxSendAttempts = 5;
constexpr absl::Duration kFirstResendDelay = absl::Milliseconds(500);

// The codes after which the call may have been carried out without the CLI
// hearing of it, or not at all, and asking again can help. Anything else is
// the service's answer and would be the same again.
bool IsResendable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kDeadlineExceeded ||
         status.code() == absl::StatusCode::kUnavailable;
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

class Runner {
 public:
  Runner(const CliOptions& options, const CliEnvironment& env)
      : options_(options), env_(env), out_(*env.out), err_(*env.err) {
    ConnectionOptions connection_options{options.server, options.timeout};
    connection_ =
        env.connect ? env.connect(connection_options) : MakeGrpcConnection(connection_options);
  }

  int Run() {
    switch (options_.command) {
      case Command::kSync:
        return Sync();
      case Command::kGet:
        return Get();
      case Command::kList:
        return List();
      case Command::kWatch:
        return Follow(options_.name, std::nullopt, v1::SyncJob::SUCCEEDED);
      case Command::kCancel:
        return Cancel();
      case Command::kRetry:
        return Retry();
      case Command::kDelete:
        return Delete();
      case Command::kHelp:
        break;
    }
    return kExitUsage;
  }

 private:
  int RpcError(const absl::Status& status) {
    err_ << FormatRpcError(status, options_.server);
    err_.flush();
    return kExitRpcError;
  }

  // Prints a message as JSON (one line) or as text.
  int Print(const google::protobuf::Message& message, const std::string& text) {
    if (options_.output == OutputFormat::kJson) {
      auto json = ToJsonLine(message);
      if (!json.ok()) return RpcError(json.status());
      out_ << *json << "\n";
    } else {
      out_ << text;
    }
    out_.flush();
    return kExitOk;
  }

  // The user's request id, or a new one, shown on stderr in text mode before
  // anything is sent so that a run cut short can be repeated with it.
  std::string RequestId(const std::string& given) {
    if (!given.empty()) return given;
    std::string id = NewRequestId();
    if (options_.output == OutputFormat::kText) {
      err_ << "request id: " << id << "\n";
      err_.flush();
    }
    return id;
  }

  // Calls `send` (a call that creates a job, carrying `request_id`) again
  // while it fails with DEADLINE_EXCEEDED or UNAVAILABLE, up to
  // kMaxSendAttempts in all, with a doubling pause. Safe because the
  // service answers a repeated request id with the job it already made.
  template <typename Send>
  absl::StatusOr<v1::SyncJob> SendCreating(const std::string& request_id, const Send& send) {
    absl::Duration delay = kFirstResendDelay;
    for (int attempt = 1;; ++attempt) {
      absl::StatusOr<v1::SyncJob> job = send();
      if (job.ok() || !IsResendable(job.status())) return job;
      const std::string why = absl::StrCat(absl::StatusCodeToString(job.status().code()), ": ",
                                           Printable(job.status().message(), 200));
      if (attempt == kMaxSendAttempts) {
        err_ << "note: attempt " << attempt << " of " << kMaxSendAttempts << " failed (" << why
             << "); giving up";
        if (!request_id.empty()) {
          err_ << ". The job may exist: run the command again with --request-id "
               << Printable(request_id, 64) << " to get it without making another";
        }
        err_ << "\n";
        return job;
      }
      err_ << "note: attempt " << attempt << " of " << kMaxSendAttempts << " failed (" << why
           << "); sending again with the same request id in " << absl::FormatDuration(delay)
           << "\n";
      err_.flush();
      env_.clock->SleepUntil(env_.clock->Now() + delay);
      delay *= 2;
    }
  }

  // Prints the job, or with --wait follows it; `success` is the state that
  // makes a followed job exit 0.
  int ShowOrFollow(v1::SyncJob job, v1::SyncJob::State success) {
    if (!options_.wait) return Print(job, FormatJobText(job));
    if (job.name().empty()) {
      return RpcError(absl::InternalError("the service returned the job without its name"));
    }
    const std::string name = job.name();
    return Follow(name, std::move(job), success);
  }

  int Sync() {
    v1::SyncBlueprintRequest request;
    request.set_source_region(options_.source_region);
    request.set_blueprint_id(options_.blueprint_id);
    for (const auto& r : options_.destinations) request.add_destination_regions(r);
    for (const auto& [key, value] : options_.labels) (*request.mutable_labels())[key] = value;
    if (options_.job_timeout > absl::ZeroDuration()) {
      SetDuration(options_.job_timeout, request.mutable_timeout());
    }
    if (options_.keep_failed_copies.has_value()) {
      request.set_keep_failed_copies(*options_.keep_failed_copies);
    }
    request.set_validate_only(options_.validate_only);
    // A dry run creates nothing, so it needs no made-up id to be re-sent.
    request.set_request_id(options_.validate_only ? options_.request_id
                                                  : RequestId(options_.request_id));
    auto job =
        SendCreating(request.request_id(), [&] { return connection_->SyncBlueprint(request); });
    if (!job.ok()) return RpcError(job.status());
    if (options_.validate_only) return Print(*job, FormatValidateOnlyText(*job));
    return ShowOrFollow(*std::move(job), v1::SyncJob::SUCCEEDED);
  }

  int Cancel() {
    v1::CancelSyncJobRequest request;
    request.set_name(options_.name);
    auto job = connection_->CancelSyncJob(request);
    if (!job.ok()) return RpcError(job.status());
    return ShowOrFollow(*std::move(job), v1::SyncJob::CANCELLED);
  }

  int Retry() {
    v1::RetrySyncJobRequest request;
    request.set_name(options_.name);
    request.set_request_id(RequestId(options_.request_id));
    auto job =
        SendCreating(request.request_id(), [&] { return connection_->RetrySyncJob(request); });
    if (!job.ok()) return RpcError(job.status());
    return ShowOrFollow(*std::move(job), v1::SyncJob::SUCCEEDED);
  }

  // JSON mode prints the RPC's answer, google.protobuf.Empty: "{}".
  int Delete() {
    v1::DeleteSyncJobRequest request;
    request.set_name(options_.name);
    if (absl::Status s = connection_->DeleteSyncJob(request); !s.ok()) return RpcError(s);
    return Print(google::protobuf::Empty(),
                 absl::StrCat("deleted ", Printable(options_.name), "\n"));
  }

  int Get() {
    v1::GetSyncJobRequest request;
    request.set_name(options_.name);
    auto job = connection_->GetSyncJob(request);
    if (!job.ok()) return RpcError(job.status());
    return Print(*job, FormatJobText(*job));
  }

  int List() {
    v1::ListSyncJobsRequest request;
    request.set_page_size(options_.page_size);
    request.set_page_token(options_.page_token);
    request.set_filter(options_.filter);
    request.set_order_by(options_.order_by);
    v1::ListSyncJobsResponse combined;
    std::set<std::string> tokens_seen;
    while (true) {
      auto page = connection_->ListSyncJobs(request);
      if (!page.ok()) return RpcError(page.status());
      if (!options_.all) {
        combined = *std::move(page);
        break;
      }
      for (auto& job : *page->mutable_sync_jobs()) *combined.add_sync_jobs() = std::move(job);
      const std::string& token = page->next_page_token();
      if (token.empty()) break;
      // A server bug must not turn --all into an endless loop.
      if (!tokens_seen.insert(token).second) {
        return RpcError(absl::InternalError(
            absl::StrCat("the service returned page token \"", Printable(token, 64),
                         "\" twice; stopping after ", combined.sync_jobs_size(), " jobs")));
      }
      request.set_page_token(token);
    }
    return Print(combined, FormatJobListText(combined));
  }

  // Shared by `watch` and --wait. Exits 0 when the job ends in `success`
  // (SUCCEEDED, or CANCELLED for `cancel --wait`), else kExitJobFailed.
  int Follow(const std::string& name, std::optional<v1::SyncJob> known,
             v1::SyncJob::State success) {
    DisplayMode mode = DisplayMode::kLines;
    if (options_.output == OutputFormat::kJson) {
      mode = DisplayMode::kJson;
    } else if (env_.stdout_is_terminal) {
      mode = DisplayMode::kTerminal;
    }
    ProgressView view(mode, &out_, &err_, env_.clock);
    if (known.has_value()) view.OnJob(*known);
    absl::StatusOr<v1::SyncJob> result;
    {
      std::optional<ProgressTicker> ticker;
      if (mode == DisplayMode::kTerminal) ticker.emplace(&view, env_.redraw_interval);
      JobWatcher watcher(connection_.get(), env_.clock, env_.reconnect);
      result = watcher.Watch(
          name, std::move(known), [&view](const v1::SyncJob& job) { view.OnJob(job); },
          [&view](const std::string& note) { view.OnNote(note); });
    }
    view.Finish();
    if (!result.ok()) return RpcError(result.status());
    return result->state() == success ? kExitOk : kExitJobFailed;
  }

  const CliOptions& options_;
  const CliEnvironment& env_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<BlueprintSyncConnection> connection_;
};

}  // namespace

int RunCli(const std::vector<std::string>& args, const CliEnvironment& env) {
  auto options = ParseCommandLine(args, env.getenv);
  if (!options.ok()) {
    *env.err << "error: " << options.status().message() << "\n"
             << "run 'blueprint-sync --help' for usage\n";
    env.err->flush();
    return kExitUsage;
  }
  if (options->command == Command::kHelp) {
    *env.out << HelpText(options->help_topic);
    env.out->flush();
    return kExitOk;
  }
  return Runner(*options, env).Run();
}

}  // namespace blueprintsync::cli
