package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// get fetches url and returns the status and body (0 when unreachable).
func get(url string) (int, string) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// eventually polls cond every 50ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// referenceFingerprint applies events to a fresh database in one batch.
func referenceFingerprint(t *testing.T, raws [][]byte) map[string]string {
	t.Helper()
	ref, _ := persistencetest.NewStore(t, nil)
	b := mapping.NewBatch()
	for _, r := range raws {
		e, err := mapping.Decode(r, "")
		if err != nil {
			t.Fatal(err)
		}
		mappingtest.Policy().Admit(&e, time.Now())
		b.Add(&e, time.Now())
	}
	if _, err := ref.ApplyBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, ref, &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute})
	fp, err := ref.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// TestPostgresRestartIsWaitedOut stops the processor's Postgres (a private
// cluster) while events keep coming: the processor reports not ready, keeps
// running, and once Postgres is back applies everything, losing nothing.
func TestPostgresRestartIsWaitedOut(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "prechat-outage-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755) // as root, the cluster runs as the postgres user
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	pg, dbURL, err := startDevPostgres(ctx, dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.stop)
	store, err := persistence.Open(ctx, dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 2, topic)
	gen := mappingtest.NewGenerator(11, 100, 40, 5)
	raws := gen.Events(600)
	proc := startProcessor(t, []string{"IDENTITY_SECRET=" + mappingtest.IdentitySecret, "DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
		"KAFKA_GROUP=g", "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON), "HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0",
		"BATCH_SIZE=100"}, "serve")
	admin := "http://" + proc.logAddr(t, "admin listening", 30*time.Second)
	consumed := func(n int64) func() bool {
		return func() bool {
			offs, err := store.OffsetsGet(ctx, "g", topic)
			var sum int64
			for _, o := range offs {
				sum += o
			}
			if err != nil || sum < n {
				return false
			}
			backlog, err := store.RefreshBacklog(ctx)
			return err == nil && backlog == 0 // and every document refreshed
		}
	}
	pipelinetest.Produce(t, brokers, topic, raws[:300]...)
	eventually(t, 30*time.Second, "first half consumed", consumed(300))
	if code, body := get(admin + "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before the outage: %d %s", code, body)
	}

	pg.stop()
	eventually(t, 10*time.Second, "readyz reports Postgres down", func() bool {
		code, body := get(admin + "/readyz")
		return code == http.StatusServiceUnavailable && !strings.Contains(body, `"postgres":"ok"`)
	})
	// The consumer retries the batch of these events against the dead
	// database (its suppressions are read first, then it is applied): two
	// more attempts logged than before they came.
	batchRetry := regexp.MustCompile(`(read suppressions|apply batch) failed; retrying`)
	retries := func() int { return len(batchRetry.FindAllString(proc.stderr.String(), -1)) }
	before := retries()
	pipelinetest.Produce(t, brokers, topic, raws[300:]...)
	eventually(t, 30*time.Second, "the consumer retries the batch during the outage", func() bool { return retries() >= before+2 || !proc.running() })
	if !proc.running() {
		t.Fatalf("the processor exited during the outage: %v\n%s", proc.err, proc.stderr.String())
	}
	if err := pg.start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "everything consumed after the restart", consumed(600))
	eventually(t, 10*time.Second, "ready again", func() bool { code, _ := get(admin + "/readyz"); return code == http.StatusOK })
	if !proc.running() {
		t.Fatalf("the processor restarted itself: %v", proc.err)
	}
	got, err := store.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceFingerprint(t, raws); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after the outage differs from the reference:\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(proc.stderr.String(), "failed; retrying") {
		t.Fatalf("no retry was logged during the outage")
	}
	proc.signal(syscall.SIGTERM, 20*time.Second)
}

// TestKafkaOutageIsWaitedOut takes the broker away and brings it back (same
// port, same log): the ingest answers 503 while it is gone and never 200
// without an acknowledgement, readiness reports it, and afterwards the
// ingest and the consumer go on with nothing lost and no restart.
func TestKafkaOutageIsWaitedOut(t *testing.T) {
	t.Parallel()
	topic := pipelinetest.Name(t, "topic")
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	startBroker := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(2, topic), kfake.DataDir(logDir),
			kfake.GroupMinSessionTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	broker := startBroker()
	t.Cleanup(func() { broker.Close() })
	store, dbURL := persistencetest.NewStore(t, nil)
	proc := startProcessor(t, []string{"IDENTITY_SECRET=" + mappingtest.IdentitySecret, "DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + fmt.Sprintf("127.0.0.1:%d", port), "KAFKA_TOPIC=" + topic,
		"KAFKA_GROUP=g", "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON), "HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0",
		"WRITE_KEYS=wk", "KAFKA_SESSION_TIMEOUT=2s", "KAFKA_HEARTBEAT_INTERVAL=500ms"}, "serve")
	base := "http://" + proc.logAddr(t, "http listening", 30*time.Second)
	admin := "http://" + proc.logAddr(t, "admin listening", 30*time.Second)
	post := func(id string) int {
		res, err := http.Post(base+"/v1/t", "text/plain", strings.NewReader(
			`{"writeKey":"wk","event":"Live Chat Conversation Started","anonymousId":"`+id+`","messageId":"`+id+`","properties":{"subject":"s"}}`))
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	var acked []string
	for i := range 5 {
		id := fmt.Sprintf("before-%d", i)
		if code := post(id); code != http.StatusOK {
			t.Fatalf("ingest before the outage: %d", code)
		}
		acked = append(acked, id)
	}

	broker.Close()
	if code := post("during"); code != http.StatusServiceUnavailable {
		t.Fatalf("ingest without a broker answered %d, want 503", code)
	}
	eventually(t, 10*time.Second, "readyz reports Kafka down", func() bool {
		code, body := get(admin + "/readyz")
		return code == http.StatusServiceUnavailable && !strings.Contains(body, `"kafka":"ok"`)
	})

	broker = startBroker()
	eventually(t, 60*time.Second, "ingest accepts again", func() bool { return post("after-0") == http.StatusOK })
	acked = append(acked, "after-0")
	for i := 1; i < 5; i++ {
		id := fmt.Sprintf("after-%d", i)
		if code := post(id); code != http.StatusOK {
			t.Fatalf("ingest after the outage: %d", code)
		}
		acked = append(acked, id)
	}
	eventually(t, 60*time.Second, "every acknowledged event applied and its document written", func() bool {
		for _, id := range acked {
			if ok, err := store.Reflects(context.Background(), id, []string{id}); err != nil || !ok {
				return false
			}
		}
		return true
	})
	for _, id := range acked {
		if _, _, err := store.DocumentGet(context.Background(), id); err != nil {
			t.Fatalf("document of %s: %v", id, err)
		}
	}
	if !proc.running() {
		t.Fatalf("the processor exited: %v", proc.err)
	}
	proc.signal(syscall.SIGTERM, 20*time.Second)
}

// TestPublicPortCutsOffSlowAndOversizedRequests: a client that never
// finishes its headers is disconnected after the header timeout, and
// oversized headers are refused, so a few sockets cannot hold the port.
func TestPublicPortCutsOffSlowAndOversizedRequests(t *testing.T) {
	t.Parallel()
	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 1, topic)
	_, dbURL := persistencetest.NewStore(t, nil)
	proc := startProcessor(t, []string{"IDENTITY_SECRET=" + mappingtest.IdentitySecret, "DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
		"ROLES=api", "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON), "HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0"}, "serve")
	addr := proc.logAddr(t, "http listening", 30*time.Second)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /v1/prechat/x HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(conn)
	if err != nil || time.Since(start) > 10*time.Second {
		t.Fatalf("a request with unfinished headers held the connection for %v (%v)", time.Since(start), err)
	}

	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/prechat/x", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 64<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KB of headers: %d, want 431", res.StatusCode)
	}
}

// TestFreePortIsBelowTheEphemeralRange: the ports the outage tests and
// processor dev release and take again are ones no outgoing connection or
// port-0 listener can be given meanwhile.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	t.Parallel()
	first := ephemeralPortsStart()
	if first == 0 {
		t.Skip("the kernel's ephemeral port range is unknown here (not Linux)")
	}
	for range 20 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if p >= first || p < 1024 {
			t.Fatalf("freePort gave %d, want a port below the ephemeral range (from %d)", p, first)
		}
	}
}
