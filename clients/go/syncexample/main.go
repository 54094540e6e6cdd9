// syncexample: the safe way for a Go service to call blueprint-sync.
//
// SyncBlueprint creates paid images upstream, so a caller must never turn one
// intent into two jobs. What makes that safe, in the order this program does
// it:
//   - one request id (a UUID) per intent, generated before the first attempt
//     and sent unchanged on every retry: the server answers a repeat with the
//     job the first attempt created (or is still creating), never a second one;
//   - a deadline on every attempt, so a hung connection cannot hang the caller;
//   - retries only on UNAVAILABLE and DEADLINE_EXCEEDED, a bounded number of
//     times with growing, jittered pauses; every other code is final (a job
//     that failed for good answers FAILED_PRECONDITION, not a retryable code);
//   - WatchSyncJob until the job is SUCCEEDED, FAILED or CANCELLED, reconnecting
//     when the stream breaks (UNAVAILABLE: a restart, a GOAWAY at
//     --max-connection-age) or ends without a final state; the first message of
//     every watch is the job as it is now, so a reconnect resumes by itself;
//   - the reason from google.rpc.ErrorInfo (grpc-status-details-bin) in every
//     error it prints, since that, not the message text, is what code may test.
//
// The channel takes its defaults (per-method timeouts, transparent retries of
// UNAVAILABLE) from clients/service_config.json. Debian's grpc-go 1.33 applies
// a service config's retryPolicy only with GRPC_GO_RETRY=on; the loop below
// does not depend on it.
//
// Usage:
//
//	syncexample -target 127.0.0.1:50051 -service-config clients/service_config.json \
//	    -source-region ap-guangzhou -blueprint-id lhbp-gzbase01 -to ap-beijing,ap-shanghai
//
// Exit status: 0 the job SUCCEEDED, 1 it failed or was cancelled, or a call
// failed for good, 2 usage.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"math"
	mrand "math/rand"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	pb "blueprintsync.internal/gen/go/blueprintsync/v1"
)

type options struct {
	target         string
	serviceConfig  string
	sourceRegion   string
	blueprintID    string
	destinations   []string
	requestID      string
	attemptTimeout time.Duration
	attempts       int
	watchTimeout   time.Duration
}

func main() {
	opts, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "syncexample:", err)
		os.Exit(2)
	}
	conn, err := dial(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "syncexample:", err)
		os.Exit(2)
	}
	defer conn.Close()
	client := pb.NewBlueprintSyncClient(conn)

	job, err := syncWithRetries(client, opts)
	if err != nil {
		fmt.Println("sync failed:", describe(err))
		os.Exit(1)
	}
	final, err := watchUntilDone(client, job.GetName(), opts.watchTimeout)
	if err != nil {
		fmt.Println("watch failed:", describe(err))
		os.Exit(1)
	}
	fmt.Printf("final state: %s\n", final.GetState())
	if final.GetState() != pb.SyncJob_SUCCEEDED {
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	var o options
	var to string
	flag.StringVar(&o.target, "target", "127.0.0.1:50051", "blueprint-sync address")
	flag.StringVar(&o.serviceConfig, "service-config", "clients/service_config.json", "gRPC service config (JSON)")
	flag.StringVar(&o.sourceRegion, "source-region", "", "region of the blueprint")
	flag.StringVar(&o.blueprintID, "blueprint-id", "", "the blueprint to copy (lhbp-…)")
	flag.StringVar(&to, "to", "", "destination regions, comma-separated")
	flag.StringVar(&o.requestID, "request-id", "", "request id to use (default: a new UUID)")
	flag.DurationVar(&o.attemptTimeout, "attempt-timeout", 30*time.Second, "deadline of one SyncBlueprint attempt")
	flag.IntVar(&o.attempts, "attempts", 5, "SyncBlueprint attempts at most")
	flag.DurationVar(&o.watchTimeout, "watch-timeout", 6*time.Hour, "how long to watch the job at most")
	flag.Parse()
	if o.sourceRegion == "" || o.blueprintID == "" || to == "" {
		return o, errors.New("-source-region, -blueprint-id and -to are required")
	}
	if o.attempts < 1 {
		return o, errors.New("-attempts must be at least 1")
	}
	o.destinations = strings.Split(to, ",")
	return o, nil
}

func dial(o options) (*grpc.ClientConn, error) {
	config, err := ioutil.ReadFile(o.serviceConfig)
	if err != nil {
		return nil, fmt.Errorf("reading the service config: %v", err)
	}
	// The server pings every 60 s and closes a connection whose client pings
	// more often than every 30 s: ping at the server's pace, and only while a
	// call (a watch) is open.
	ka := keepalive.ClientParameters{Time: 60 * time.Second, Timeout: 20 * time.Second}
	// Reconnect within a few seconds of a restart instead of gRPC's default
	// of up to two minutes between connection attempts.
	reconnect := grpc.ConnectParams{Backoff: backoff.Config{
		BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second,
	}, MinConnectTimeout: 5 * time.Second}
	conn, err := grpc.Dial(o.target, grpc.WithInsecure(), grpc.WithDefaultServiceConfig(string(config)),
		grpc.WithKeepaliveParams(ka), grpc.WithConnectParams(reconnect))
	if err != nil {
		return nil, fmt.Errorf("service config %s: %v", o.serviceConfig, err)
	}
	return conn, nil
}

// syncWithRetries sends one SyncBlueprint intent: the same request (and so
// the same request id) on every attempt.
func syncWithRetries(client pb.BlueprintSyncClient, o options) (*pb.SyncJob, error) {
	requestID := o.requestID
	if requestID == "" {
		requestID = newUUID()
	}
	fmt.Println("request id:", requestID)
	req := &pb.SyncBlueprintRequest{
		RequestId:          requestID,
		SourceRegion:       o.sourceRegion,
		BlueprintId:        o.blueprintID,
		DestinationRegions: o.destinations,
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), o.attemptTimeout)
		job, err := client.SyncBlueprint(ctx, req)
		cancel()
		if err == nil {
			fmt.Printf("job: %s state: %s (attempt %d)\n", job.GetName(), job.GetState(), attempt)
			return job, nil
		}
		code := status.Code(err)
		if !retryableSync(code) || attempt == o.attempts {
			return nil, err
		}
		pause := backoffFor(attempt)
		fmt.Printf("attempt %d: %s; retrying with the same request id %s in %v\n", attempt, codeName(code),
			requestID, pause.Round(time.Millisecond))
		time.Sleep(pause)
	}
}

// retryableSync: the codes after which the same request may have done
// nothing yet, or may have created the job without the answer reaching us.
// Retrying them is safe only because the request id is the same.
func retryableSync(code codes.Code) bool {
	return code == codes.Unavailable || code == codes.DeadlineExceeded
}

// watchUntilDone follows the job until a final state, reconnecting when the
// stream breaks, for at most `limit`.
func watchUntilDone(client pb.BlueprintSyncClient, name string, limit time.Duration) (*pb.SyncJob, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last *pb.SyncJob
	failures := 0
	for {
		job, err := watchOnce(ctx, client, name, &last, &failures)
		if job != nil {
			return job, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no final state within %v: %w", limit, err)
		}
		failures++
		pause := backoffFor(failures)
		fmt.Printf("watch interrupted (%s); reconnecting in %v\n", describe(err), pause.Round(time.Millisecond))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
	}
}

// watchOnce reads one stream. It returns the job once it is final, otherwise
// the error that ended the stream (checkWatchError has already ended the
// program on errors a reconnect cannot fix).
func watchOnce(ctx context.Context, client pb.BlueprintSyncClient, name string, last **pb.SyncJob,
	failures *int) (*pb.SyncJob, error) {
	stream, err := client.WatchSyncJob(ctx, &pb.WatchSyncJobRequest{Name: name})
	if err != nil {
		return nil, checkWatchError(err)
	}
	for {
		job, err := stream.Recv()
		if err == io.EOF {
			return nil, errors.New("the stream ended before a final state")
		}
		if err != nil {
			return nil, checkWatchError(err)
		}
		*failures = 0 // the server answered: start the pauses small again
		if *last == nil || (*last).GetState() != job.GetState() {
			fmt.Printf("job: %s state: %s\n", job.GetName(), job.GetState())
		}
		*last = job
		if isFinal(job.GetState()) {
			return job, nil
		}
	}
}

// checkWatchError ends the program on errors a reconnect cannot fix
// (NOT_FOUND, PERMISSION_DENIED, ...) and passes the others back.
func checkWatchError(err error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown:
		// INTERNAL and UNKNOWN: what a connection cut mid-frame can look like.
		return err
	}
	fmt.Println("watch failed:", describe(err))
	os.Exit(1)
	return nil
}

func isFinal(s pb.SyncJob_State) bool {
	return s == pb.SyncJob_SUCCEEDED || s == pb.SyncJob_FAILED || s == pb.SyncJob_CANCELLED
}

// backoffFor: 0.25 s, 0.5 s, 1 s, 2 s, 2 s... each with up to 20 % jitter so
// clients that failed together do not retry together.
func backoffFor(attempt int) time.Duration {
	base := 250 * time.Millisecond * time.Duration(math.Pow(2, float64(attempt-1)))
	if base > 2*time.Second {
		base = 2 * time.Second
	}
	return base + time.Duration(mrand.Int63n(int64(base)/5+1))
}

// describe prints the code, the message and what ErrorInfo says: its reason
// (stable, for code to test) and metadata (tencent_code, job, field, ...).
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	text := fmt.Sprintf("%s: %s", codeName(st.Code()), st.Message())
	for _, d := range st.Details() {
		switch detail := d.(type) {
		case *errdetails.ErrorInfo:
			text += fmt.Sprintf(" [reason=%s domain=%s", detail.GetReason(), detail.GetDomain())
			keys := make([]string, 0, len(detail.GetMetadata()))
			for k := range detail.GetMetadata() {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				text += fmt.Sprintf(" %s=%s", k, detail.GetMetadata()[k])
			}
			text += "]"
		case *errdetails.BadRequest:
			for _, v := range detail.GetFieldViolations() {
				text += fmt.Sprintf(" [field %s: %s]", v.GetField(), v.GetDescription())
			}
		}
	}
	return text
}

// codeName: the code as the gRPC spec and the other languages spell it
// (grpc-go's String() says "DeadlineExceeded").
func codeName(c codes.Code) string {
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if int(c) < len(names) {
		return names[c]
	}
	return c.String()
}

// newUUID: a random (version 4) UUID, the form request_id must have.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
