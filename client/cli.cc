#include "client/cli.h"

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "client/cli_options.h"
#include "client/exit_codes.h"
#include "client/job_format.h"
#include "client/policy_format.h"
#include "client/policy_waiter.h"
#include "client/printable.h"
#include "client/progress_view.h"
#include "client/request_id.h"
#include "client/rpc_error.h"
#include "client/tls_files.h"
#include "client/version.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/wrappers.pb.h"

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
  Runner(const CliOptions& options, const CliEnvironment& env, TlsMaterial tls)
      : options_(options), env_(env), out_(*env.out), err_(*env.err) {
    ConnectionOptions connection_options{options.server, options.timeout, std::move(tls)};
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
      case Command::kPolicyCreate:
        return CreatePolicy();
      case Command::kPolicyGet:
        return options_.wait ? WaitForPolicy() : GetPolicy();
      case Command::kPolicyList:
        return ListPolicies();
      case Command::kPolicyUpdate:
        return UpdatePolicy();
      case Command::kPolicyDelete:
        return DeletePolicy();
      case Command::kHelp:
      case Command::kVersion:
      case Command::kCompletion:
        break;
    }
    return kExitUsage;
  }

 private:
  int RpcError(const absl::Status& status) {
    err_ << FormatRpcError(status, options_.server);
    // A TLS mismatch shows up only as "unavailable": say which side of it
    // the CLI was on.
    if (status.code() == absl::StatusCode::kUnavailable) {
      if (!options_.tls.enabled()) {
        err_ << "  tls: off; if the server uses TLS, give --cacert FILE (or --tls), and for "
                "mTLS --cert FILE --key FILE\n";
      } else {
        err_ << "  tls: on; check that --cacert signed the server's certificate, that it "
                "names --server-name (or --server's host), and for mTLS --cert/--key\n";
      }
    }
    err_.flush();
    return kExitRpcError;
  }

  // Prints a message as JSON (one line), as names (one a line, -o name) or
  // as text (`wide`: -o wide's text, when it differs).
  int Print(const google::protobuf::Message& message, const std::string& text,
            const std::vector<std::string>& names, const std::string& wide = "") {
    switch (options_.output) {
      case OutputFormat::kJson: {
        auto json = ToJsonLine(message);
        if (!json.ok()) return RpcError(json.status());
        out_ << *json << "\n";
        break;
      }
      case OutputFormat::kName:
        for (const std::string& name : names) {
          if (!name.empty()) out_ << Printable(name) << "\n";
        }
        break;
      case OutputFormat::kWide:
        out_ << (wide.empty() ? text : wide);
        break;
      case OutputFormat::kText:
        out_ << text;
        break;
    }
    out_.flush();
    return kExitOk;
  }

  // A list answer as JSON with its list always there ([] when empty) and
  // the page token always there ("" on the last page): scripts can read
  // .syncJobs[] without checking that the key exists. `field` is the list's
  // JSON name.
  template <typename Items>
  int PrintList(const google::protobuf::Message& response, const Items& items,
                const std::string& field, const std::string& token, const std::string& text,
                const std::string& wide = "") {
    std::vector<std::string> names;
    for (const auto& item : items) names.push_back(item.name());
    if (options_.output != OutputFormat::kJson) return Print(response, text, names, wide);
    std::string json = absl::StrCat("{\"", field, "\":[");
    bool first = true;
    for (const auto& item : items) {
      auto line = ToJsonLine(item);
      if (!line.ok()) return RpcError(line.status());
      absl::StrAppend(&json, first ? "" : ",", *line);
      first = false;
    }
    google::protobuf::StringValue token_value;
    token_value.set_value(token);
    auto token_json = ToJsonLine(token_value);  // a quoted, escaped JSON string
    if (!token_json.ok()) return RpcError(token_json.status());
    absl::StrAppend(&json, "],\"nextPageToken\":", *token_json, "}");
    out_ << json << "\n";
    out_.flush();
    return kExitOk;
  }

  // The user's request id, or a new one, shown on stderr in text mode before
  // anything is sent so that a run cut short can be repeated with it.
  std::string RequestId(const std::string& given) {
    if (!given.empty()) return given;
    std::string id = NewRequestId();
    if (options_.output != OutputFormat::kJson) {
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
    if (!options_.wait) return Print(job, FormatJobText(job), {job.name()});
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
    // Nothing was made, so -o name prints no name.
    if (options_.validate_only) return Print(*job, FormatValidateOnlyText(*job), {});
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
                 absl::StrCat("deleted ", Printable(options_.name), "\n"), {options_.name});
  }

  int Get() {
    v1::GetSyncJobRequest request;
    request.set_name(options_.name);
    auto job = connection_->GetSyncJob(request);
    if (!job.ok()) return RpcError(job.status());
    return Print(*job, FormatJobText(*job), {job->name()});
  }

  // One page, or with --all every page (following next_page_token) merged
  // into one response; `items` picks the response's repeated field, `noun`
  // names what it holds.
  template <typename Request, typename Call, typename Items>
  auto ListPages(Request request, const Call& call, const Items& items, const char* noun)
      -> decltype(call(request)) {
    typename decltype(call(request))::value_type combined;
    std::set<std::string> tokens_seen;
    while (true) {
      auto page = call(request);
      if (!page.ok() || !options_.all) return page;
      for (auto& item : *items(*page)) *items(combined)->Add() = std::move(item);
      const std::string token = page->next_page_token();
      if (token.empty()) return combined;
      // A server bug must not turn --all into an endless loop.
      if (!tokens_seen.insert(token).second) {
        return absl::InternalError(absl::StrCat("the service returned page token \"",
                                                Printable(token, 64), "\" twice; stopping after ",
                                                items(combined)->size(), " ", noun));
      }
      request.set_page_token(token);
    }
  }

  int List() {
    v1::ListSyncJobsRequest request;
    request.set_page_size(options_.page_size);
    request.set_page_token(options_.page_token);
    request.set_filter(options_.filter);
    request.set_order_by(options_.order_by);
    auto jobs = ListPages(
        request, [this](const v1::ListSyncJobsRequest& r) { return connection_->ListSyncJobs(r); },
        [](v1::ListSyncJobsResponse& r) { return r.mutable_sync_jobs(); }, "jobs");
    if (!jobs.ok()) return RpcError(jobs.status());
    return PrintList(*jobs, jobs->sync_jobs(), "syncJobs", jobs->next_page_token(),
                     FormatJobListText(*jobs), FormatJobListText(*jobs, /*wide=*/true));
  }

  int CreatePolicy() {
    v1::CreateSyncPolicyRequest request;
    request.set_sync_policy_id(options_.policy_id);
    request.set_validate_only(options_.validate_only);
    v1::SyncPolicy& policy = *request.mutable_sync_policy();
    policy.set_source_region(options_.source_region);
    if (!options_.blueprint_name.empty()) {
      policy.set_blueprint_name(options_.blueprint_name);
    } else {
      policy.set_blueprint_id(options_.blueprint_id);
    }
    for (const auto& r : options_.destinations) policy.add_destination_regions(r);
    policy.set_keep_versions(options_.keep_versions.value_or(0));
    policy.set_paused(options_.paused.value_or(false));
    for (const auto& [key, value] : options_.labels) (*policy.mutable_labels())[key] = value;
    // Not re-sent on UNAVAILABLE as sync is: a policy costs nothing until
    // its controller runs, and a repeat answers ALREADY_EXISTS, not a twin.
    auto created = connection_->CreateSyncPolicy(request);
    if (!created.ok()) return RpcError(created.status());
    if (options_.validate_only) {
      return Print(*created, FormatPolicyValidateOnlyText(*created), {});
    }
    return Print(*created, FormatPolicyText(*created), {created->name()});
  }

  int GetPolicy() {
    v1::GetSyncPolicyRequest request;
    request.set_name(options_.name);
    auto policy = connection_->GetSyncPolicy(request);
    if (!policy.ok()) return RpcError(policy.status());
    return Print(*policy, FormatPolicyText(*policy), {policy->name()});
  }

  int ListPolicies() {
    v1::ListSyncPoliciesRequest request;
    request.set_page_size(options_.page_size);
    request.set_page_token(options_.page_token);
    request.set_filter(options_.filter);
    auto policies = ListPages(
        request,
        [this](const v1::ListSyncPoliciesRequest& r) { return connection_->ListSyncPolicies(r); },
        [](v1::ListSyncPoliciesResponse& r) { return r.mutable_sync_policies(); }, "policies");
    if (!policies.ok()) return RpcError(policies.status());
    return PrintList(*policies, policies->sync_policies(), "syncPolicies",
                     policies->next_page_token(), FormatPolicyListText(*policies));
  }

  // The mask names exactly the fields whose flags were given, so an update
  // never resets a field the user did not mention.
  int UpdatePolicy() {
    v1::UpdateSyncPolicyRequest request;
    v1::SyncPolicy& policy = *request.mutable_sync_policy();
    policy.set_name(options_.name);
    policy.set_etag(options_.etag);
    auto* mask = request.mutable_update_mask();
    if (!options_.destinations.empty()) {
      for (const auto& r : options_.destinations) policy.add_destination_regions(r);
      mask->add_paths("destination_regions");
    }
    if (options_.keep_versions.has_value()) {
      policy.set_keep_versions(*options_.keep_versions);
      mask->add_paths("keep_versions");
    }
    if (options_.paused.has_value()) {
      policy.set_paused(*options_.paused);
      mask->add_paths("paused");
    }
    if (options_.labels_given) {
      for (const auto& [key, value] : options_.labels) (*policy.mutable_labels())[key] = value;
      mask->add_paths("labels");
    }
    auto updated = connection_->UpdateSyncPolicy(request);
    if (!updated.ok()) return RpcError(updated.status());
    return Print(*updated, FormatPolicyText(*updated), {updated->name()});
  }

  // JSON mode prints the RPC's answer, google.protobuf.Empty: "{}".
  int DeletePolicy() {
    v1::DeleteSyncPolicyRequest request;
    request.set_name(options_.name);
    request.set_etag(options_.etag);
    request.set_delete_copies(options_.delete_copies);
    if (absl::Status s = connection_->DeleteSyncPolicy(request); !s.ok()) return RpcError(s);
    const std::string name = Printable(options_.name);
    return Print(google::protobuf::Empty(),
                 options_.delete_copies
                     ? absl::StrCat("deleting ", name,
                                    ": the copies it made are being deleted, then it is gone "
                                    "(policy get shows it meanwhile)\n")
                     : absl::StrCat("deleted ", name, " (its copies stay)\n"),
                 {options_.name});
  }

  // `policy get --wait`: a line (or with --output json, the policy) each
  // time the policy or one of its regions changes, then how it ended.
  int WaitForPolicy() {
    PolicyWaitOptions wait_options;
    wait_options.poll_interval = options_.poll_interval;
    wait_options.reconnect = env_.reconnect;
    if (options_.wait_timeout.has_value()) {
      wait_options.deadline = env_.clock->Now() + *options_.wait_timeout;
    }
    const bool json = options_.output == OutputFormat::kJson;
    const bool names_only = options_.output == OutputFormat::kName;
    std::map<std::string, std::string> shown;  // by PolicyProgressItems key
    std::string last_json;
    auto on_policy = [&](const v1::SyncPolicy& policy) {
      if (json) {
        auto line = ToJsonLine(policy);
        if (!line.ok()) {
          err_ << "note: " << line.status().message() << "\n";
        } else if (*line != last_json) {
          last_json = *line;
          out_ << *line << "\n";
        }
      } else if (!names_only) {
        // When the CLI saw it: a region can change (its job moved) without
        // the policy's own times moving.
        const std::string when = FormatUtc(env_.clock->Now());
        for (const auto& [key, text] : PolicyProgressItems(policy)) {
          std::string& before = shown[key];
          if (before == text) continue;
          before = text;
          out_ << when << " " << Printable(options_.name) << " " << text << "\n";
        }
      }
      out_.flush();
    };
    auto on_note = [this](const std::string& note) {
      err_ << "note: " << note << "\n";
      err_.flush();
    };
    PolicyWaiter waiter(connection_.get(), env_.clock, wait_options);
    auto result = waiter.Wait(options_.name, on_policy, on_note);
    if (!result.ok()) return RpcError(result.status());
    if (names_only) {
      out_ << Printable(result->policy.name().empty() ? options_.name : result->policy.name())
           << "\n";
    } else if (!json) {
      out_ << FormatPolicySummary(result->policy);
    }
    out_.flush();
    switch (result->outcome) {
      case PolicyWaitOutcome::kInSync:
        return kExitOk;
      case PolicyWaitOutcome::kRegionFailed:
        return kExitJobFailed;
      case PolicyWaitOutcome::kTimedOut:
        err_ << "error: " << Printable(options_.name) << " was not in sync after "
             << absl::FormatDuration(*options_.wait_timeout) << " (--timeout)\n";
        err_.flush();
        return kExitTimeout;
    }
    return kExitTimeout;
  }

  // Shared by `watch` and --wait. Exits 0 when the job ends in `success`
  // (SUCCEEDED, or CANCELLED for `cancel --wait`), else kExitJobFailed.
  int Follow(const std::string& name, std::optional<v1::SyncJob> known,
             v1::SyncJob::State success) {
    DisplayMode mode = DisplayMode::kLines;
    if (options_.output == OutputFormat::kJson) {
      mode = DisplayMode::kJson;
    } else if (options_.output == OutputFormat::kName) {
      mode = DisplayMode::kQuiet;  // stdout keeps only the name, printed at the end
    } else if (env_.stdout_is_terminal) {
      mode = DisplayMode::kTerminal;
    }
    ProgressView view(mode, &out_, &err_, env_.clock, env_.terminal_width);
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
    if (mode == DisplayMode::kQuiet) {
      out_ << Printable(result->name().empty() ? name : result->name()) << "\n";
      out_.flush();
    }
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
  if (options->command == Command::kVersion) {
    *env.out << "blueprint-sync " << kCliVersion;
    if (kGitDescribe[0] != '\0') *env.out << " (" << kGitDescribe << ")";
    *env.out << "\napi: " << v1::BlueprintSync::service_full_name() << "\n";
    env.out->flush();
    return kExitOk;
  }
  if (options->command == Command::kCompletion) {
    *env.out << CompletionScript(options->completion_shell);
    env.out->flush();
    return kExitOk;
  }
  // Read before any call: a missing or wrong file is the user's to fix, and
  // is said as such (exit 2), not as a failed connection.
  auto tls = LoadTlsMaterial(options->tls);
  if (!tls.ok()) {
    *env.err << "error: " << tls.status().message() << "\n";
    env.err->flush();
    return kExitUsage;
  }
  return Runner(*options, env, *std::move(tls)).Run();
}

}  // namespace blueprintsync::cli
