package helmtest_test

// A real run of the binary the image ships: "processor dev" (its in-process
// kfake broker) against the local Postgres in a database of its own, with
// events flowing through the ingest, documents fetched, and the admin port's
// /metrics scraped. The alerts, the dashboard and the KEDA trigger are
// checked against what this run exports, not against a list kept by hand.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testDatabaseURL is the Postgres server the live run creates its database
// in (scripts/test makes sure one runs there).
func testDatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// liveRun is a running "processor dev".
type liveRun struct {
	api, admin string // base URLs of the public and admin ports
	kafka      string // the in-process broker's address
	topic      string
	cmd        *exec.Cmd
	stderr     *syncBuffer
	done       chan error
	dropDB     func()
	dataDir    string
}

// syncBuffer is a bytes.Buffer safe for the child's writes and our reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// createDatabase creates a fresh database on the test server and returns
// its URL and a function that drops it.
func createDatabase(name string) (string, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := testDatabaseURL()
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return fmt.Errorf("connect to %s (scripts/test starts Postgres; TEST_DATABASE_URL points elsewhere): %w", admin, err)
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	id := pgx.Identifier{name}.Sanitize()
	if err := exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", nil, fmt.Errorf("drop an earlier database %s: %w", name, err)
	}
	if err := exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// startLive builds the image's binary (processorBinary) and starts
// "processor dev" on free loopback ports with a database of its own.
// extraEnv is added to the child's environment.
func startLive(t *testing.T, name string, extraEnv ...string) (*liveRun, error) {
	bin := processorBinary(t)
	dbURL, drop, err := createDatabase(name)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "prechat-live-")
	if err != nil {
		drop()
		return nil, err
	}
	l := &liveRun{stderr: &syncBuffer{}, done: make(chan error, 1), dropDB: drop, dataDir: dir}
	stdout, w := io.Pipe()
	l.cmd = exec.Command(bin, "dev", "--data-dir", dir, "--kafka-port", "0")
	l.cmd.Env = append([]string{
		"HOME=" + dir,
		"DATABASE_URL=" + dbURL,
		"HTTP_ADDR=127.0.0.1:0",
		"ADMIN_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
	}, extraEnv...)
	l.cmd.Stdout, l.cmd.Stderr = w, l.stderr
	if err := l.cmd.Start(); err != nil {
		drop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start processor dev: %w", err)
	}
	go func() { l.done <- l.cmd.Wait(); w.Close() }()

	// The banner names the addresses it picked.
	apiRE := regexp.MustCompile(`API +(http://[0-9.:]+)/v1/prechat/`)
	adminRE := regexp.MustCompile(`Admin +(http://[0-9.:]+)/metrics`)
	kafkaRE := regexp.MustCompile(`Kafka +([0-9.:]+), topic (\S+) `)
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if m := apiRE.FindStringSubmatch(line); m != nil {
				l.api = m[1]
			}
			if m := kafkaRE.FindStringSubmatch(line); m != nil {
				l.kafka, l.topic = m[1], m[2]
			}
			if m := adminRE.FindStringSubmatch(line); m != nil {
				l.admin = m[1]
				close(found)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-found:
	case err := <-l.done:
		l.done <- err
		l.stop()
		return nil, fmt.Errorf("processor dev exited before it was ready (%v):\n%s", err, l.stderr.String())
	case <-time.After(60 * time.Second):
		l.stop()
		return nil, fmt.Errorf("processor dev printed no banner within 60 s:\n%s", l.stderr.String())
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(l.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			l.stop()
			return nil, fmt.Errorf("processor dev not ready within 60 s (%v):\n%s", err, l.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the run with SIGTERM (SIGKILL after 20 s) and drops its database.
func (l *liveRun) stop() {
	if l.cmd.ProcessState == nil {
		_ = l.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-l.done:
			l.done <- err
		case <-time.After(20 * time.Second):
			_ = l.cmd.Process.Kill()
			l.done <- <-l.done
		}
	}
	l.dropDB()
	os.RemoveAll(l.dataDir)
}

// post sends a Segment ingest request with the dev write key.
func (l *liveRun) post(path, body string) (int, error) {
	res, err := http.Post(l.api+path, "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// get fetches a public path with optional headers (name, value, ...).
func (l *liveRun) get(path string, header ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, l.api+path, nil)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// conversation plays one visitor: identify, group, a page view, the
// conversation start, and the page's long-poll for the document (then a
// second read, which the cache answers).
func (l *liveRun) conversation(id string) error {
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	token := hex.EncodeToString(secret)
	sum := sha256.Sum256([]byte(token))
	tokenHash := hex.EncodeToString(sum[:])
	anon, user, group := "anon-"+id, "user-"+id, "group-"+id
	// The site's server vouches for the user: processor dev plays it.
	code, body, err := l.get("/dev/user-hash?userId=" + url.QueryEscape(user))
	var proof struct {
		UserHash string `json:"userHash"`
	}
	if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &proof) != nil || proof.UserHash == "" {
		return fmt.Errorf("GET /dev/user-hash: %d %v %s", code, err, body)
	}
	events := []struct{ path, body string }{
		{"/v1/i", fmt.Sprintf(`{"writeKey":%q,"anonymousId":%q,"userId":%q,"messageId":"i-%s","traits":{"email":"%s@example.com","firstName":"Ada","lastName":"Lovelace"},"context":{"prechat":{"userHash":%q}}}`, "dev-write-key", anon, user, id, id, proof.UserHash)},
		{"/v1/g", fmt.Sprintf(`{"writeKey":%q,"anonymousId":%q,"groupId":%q,"messageId":"g-%s","traits":{"website":"example.com","revenue":1000000}}`, "dev-write-key", anon, group, id)},
		{"/v1/p", fmt.Sprintf(`{"writeKey":%q,"anonymousId":%q,"messageId":"p-%s","name":"Pricing"}`, "dev-write-key", anon, id)},
		{"/v1/t", fmt.Sprintf(`{"writeKey":%q,"anonymousId":%q,"messageId":"t-%s","event":"Live Chat Conversation Started","properties":{"subject":"Shoes","caseStatus":"New"},"context":{"prechat":{"tokenHash":%q}}}`, "dev-write-key", anon, id, tokenHash)},
	}
	for _, e := range events {
		code, err := l.post(e.path, e.body)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("POST %s: %d", e.path, code)
		}
	}
	code, body, err = l.get("/v1/prechat/"+anon+"?wait=10&after=t-"+id, "X-Prechat-Token", token)
	if err != nil {
		return err
	}
	if code != http.StatusOK || !strings.Contains(body, "Shoes") {
		return fmt.Errorf("GET the document of %s: %d %s", anon, code, body)
	}
	if code, _, err = l.get("/v1/prechat/"+anon, "X-Prechat-Token", token); err != nil || code != http.StatusOK {
		return fmt.Errorf("GET the document of %s again: %d %v", anon, code, err)
	}
	return nil
}

// refusals sends what the API refuses: an unknown write key (401), an
// invalid event (400), a document nobody wrote (404).
func (l *liveRun) refusals(id string) error {
	if code, err := l.post("/v1/t", `{"writeKey":"not-a-key","event":"x","anonymousId":"a"}`); err != nil || code != http.StatusUnauthorized {
		return fmt.Errorf("ingest with an unknown write key: %d %v, want 401", code, err)
	}
	if code, err := l.post("/v1/t", `{"writeKey":"dev-write-key","anonymousId":"a"}`); err != nil || code != http.StatusBadRequest {
		return fmt.Errorf("track without event: %d %v, want 400", code, err)
	}
	if code, _, err := l.get("/v1/prechat/nobody-" + id); err != nil || code != http.StatusNotFound {
		return fmt.Errorf("GET an unknown document: %d %v, want 404", code, err)
	}
	return nil
}

// produceRaw writes a record to the topic directly, past the ingest's
// validation (as another producer could): how a dead letter is made.
func (l *liveRun) produceRaw(key, value string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(l.kafka))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: l.topic, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", l.topic, err)
	}
	return nil
}

// produceRawMany writes records to the topic at once, keyed by their
// order (spread over the partitions).
func (l *liveRun) produceRawMany(values []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(l.kafka), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	records := make([]*kgo.Record, len(values))
	for i, v := range values {
		records[i] = &kgo.Record{Topic: l.topic, Key: []byte(fmt.Sprint(i)), Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d records to %s: %w", len(values), l.topic, err)
	}
	return nil
}

// scrape reads the admin port's /metrics.
func (l *liveRun) scrape() (string, error) {
	res, err := http.Get(l.admin + "/metrics")
	if err != nil {
		return "", fmt.Errorf("scrape: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scrape: %d %s", res.StatusCode, b)
	}
	return string(b), err
}

// exposition is what one scrape showed: every sample name (histograms
// as their _bucket, _sum and _count series) with its label names.
type exposition map[string][]string

// parseExposition parses a scrape in the Prometheus text format.
func parseExposition(text string) (exposition, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse the scrape: %w", err)
	}
	out := exposition{}
	add := func(name string, labels []string) {
		for _, l := range labels {
			if !slices.Contains(out[name], l) {
				out[name] = append(out[name], l)
			}
		}
		if _, ok := out[name]; !ok {
			out[name] = []string{}
		}
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName())
			}
			switch {
			case m.Histogram != nil:
				add(name+"_bucket", append(slices.Clone(labels), "le"))
				add(name+"_sum", labels)
				add(name+"_count", labels)
			case m.Summary != nil:
				add(name, append(slices.Clone(labels), "quantile"))
				add(name+"_sum", labels)
				add(name+"_count", labels)
			default:
				add(name, labels)
			}
		}
	}
	return out, nil
}

var (
	exportedOnce sync.Once
	exported     exposition
	exportedText string
	exportedErr  error
)

// exportedMetrics is what the binary exports once it has done its work: a
// live run that consumed events, wrote documents and a dead letter, served
// and refused requests, scraped at the end. Run once per test process.
func exportedMetrics(t *testing.T) exposition {
	t.Helper()
	exportedOnce.Do(func() {
		exportedErr = errors.New("the live run did not finish (see the first test that needed it)")
		l, err := startLive(t, fmt.Sprintf("prechat_helmtest_metrics_%d", os.Getpid()))
		if err != nil {
			exportedErr = err
			return
		}
		defer l.stop()
		for i := range 3 {
			if err := l.conversation(fmt.Sprintf("m%d", i)); err != nil {
				exportedErr = err
				return
			}
		}
		if err := l.produceRaw("dead", `{"type":"identify"`); err != nil {
			exportedErr = err
			return
		}
		if err := l.refusals("m"); err != nil {
			exportedErr = err
			return
		}
		// The dead letter is applied by a later batch: wait for its count.
		var text string
		deadline := time.Now().Add(20 * time.Second)
		for {
			if text, err = l.scrape(); err != nil {
				exportedErr = err
				return
			}
			if strings.Contains(text, `outcome="dead_letter"`) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		exportedText = text
		exported, exportedErr = parseExposition(text)
		t.Logf("live run: %d series names exported", len(exported))
	})
	if exportedErr != nil {
		t.Fatal(exportedErr)
	}
	return exported
}

// TestLiveRunExports: the live run's scrape has the metrics docs/operations.md's
// table names, and shows that its events went the whole way (documents
// written, a dead letter, cache hits, refused ingest requests).
func TestLiveRunExports(t *testing.T) {
	got := exportedMetrics(t)
	for name, labels := range map[string][]string{
		"prechat_events_total":                     {"type", "outcome"},
		"prechat_batch_messages_count":             {},
		"prechat_batch_apply_seconds_bucket":       {"le"},
		"prechat_consumer_lag":                     {"topic", "partition"},
		"prechat_documents_written_total":          {},
		"prechat_retries_total":                    {},
		"prechat_retention_skipped_messages_total": {},
		"prechat_batch_splits_total":               {},
		"prechat_http_request_seconds_bucket":      {"route", "code", "le"},
		"prechat_waiters":                          {},
		"prechat_document_cache_total":             {"result"},
		"prechat_ingest_events_total":              {"result"},
	} {
		have, ok := got[name]
		if !ok {
			t.Errorf("the scrape has no %s", name)
			continue
		}
		for _, l := range labels {
			if !slices.Contains(have, l) {
				t.Errorf("%s has labels %v, want %s", name, have, l)
			}
		}
	}
	for _, re := range []string{
		`prechat_events_total\{outcome="applied",type="track"\} [1-9]`,
		`prechat_events_total\{outcome="ignored",type="page"\} [1-9]`,
		`prechat_events_total\{outcome="dead_letter",type="invalid"\} 1\n`,
		`prechat_documents_written_total [1-9]`,
		`prechat_identity_proofs_total\{result="valid"\} 3\n`,
		`prechat_document_cache_total\{result="hit"\} [1-9]`,
		`prechat_ingest_events_total\{result="produced"\} [1-9]`,
		`prechat_ingest_events_total\{result="unauthorized"\} 1\n`,
		`prechat_http_request_seconds_count\{code="404",route="prechat/\{anonymousId\}"\} 1\n`,
	} {
		if !regexp.MustCompile(re).MatchString(exportedText) {
			t.Errorf("the scrape has no sample matching %s", re)
		}
	}
}
