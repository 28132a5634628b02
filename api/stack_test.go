package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/api/apifake"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// testWriteKey is the (browser) write key every stack accepts.
const testWriteKey = "test-write-key"

// testServerKey is the server write key every stack accepts: the ingest
// vouches for the userIds of its events with mappingtest.IdentitySecret.
const testServerKey = "test-server-write-key"

// stack is the whole service for one test: a kfake broker with its own
// topic, a Postgres database, a running consumer, the notification hub and
// the API on an httptest server.
type stack struct {
	t       testing.TB
	brokers []string
	topic   string
	store   *persistence.Store
	dbURL   string
	hub     *persistence.Hub
	writer  pipeline.Writer
	server  *api.Server
	http    *httptest.Server
	url     string

	// docs, notifier and producer are the in-memory fakes of a fake stack
	// (newFakeStack), nil in a stack of the real parts.
	docs     *apifake.Documents
	notifier *apifake.Notifier
	producer *apifake.Producer

	mu       sync.Mutex
	requests []recorded
}

// recorded is a request the API received (stackOptions.record).
type recorded struct {
	method, path, query, token string
	body                       []byte
}

// stackOptions adjust a stack; zero values take the defaults below.
type stackOptions struct {
	api          api.Config
	noConsumer   bool
	deploymentJS string
	// extraRoutes are served beside the API (test pages, stand-in scripts).
	extraRoutes map[string]http.Handler
	// record keeps every request to the API, with its X-Prechat-Token and
	// body (stack.recorded).
	record bool
	// wrapDocs, if set, wraps the document store the API reads.
	wrapDocs func(api.Documents) api.Documents
	// store configures the stack's store (persistencetest.NewStore).
	store *persistence.Config
}

func newStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test needs Postgres and Kafka; -short runs the tests on in-memory fakes only (newFakeStack)")
	}
	s := &stack{t: t, topic: pipelinetest.Name(t, "topic")}
	s.brokers = pipelinetest.NewCluster(t, 2, s.topic)
	s.store, s.dbURL = persistencetest.NewStore(t, opts.store)
	dbURL := s.dbURL
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	level := zap.InfoLevel
	if _, bench := t.(*testing.B); bench {
		level = zap.WarnLevel // benchmark logs are always printed
	}
	log := zaptest.NewLogger(t, zaptest.Level(level))
	s.hub = persistence.NewHub(dbURL, 200*time.Millisecond, func(err error) { t.Logf("hub: %v", err) })
	wg.Go(func() { _ = s.hub.Run(ctx) })
	if !opts.noConsumer {
		c, err := pipeline.New(pipeline.Config{
			Brokers:           s.brokers,
			Topic:             s.topic,
			GroupID:           pipelinetest.Name(t, "group"),
			Materializer:      &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute},
			Policy:            mappingtest.Policy(),
			BatchTimeout:      5 * time.Millisecond,
			MaxWait:           100 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond,
			Logger:            log.Named("consumer"),
		}, s.store)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = c.Run(ctx) })
	}
	s.writer = pipeline.NewWriter(s.brokers, s.topic, nil, log.Named("writer"))
	t.Cleanup(func() { _ = s.writer.Close() })

	if opts.api.DeploymentScriptURL == "" {
		opts.api.DeploymentScriptURL = opts.deploymentJS
	}
	cfg := testConfig(opts.api, log.Named("api"))
	var producer api.Producer = s.writer
	if len(cfg.WriteKeys) == 0 {
		producer = nil
	}
	var docs api.Documents = s.store
	if opts.wrapDocs != nil {
		docs = opts.wrapDocs(docs)
	}
	server, err := api.New(cfg, docs, s.hub, producer)
	if err != nil {
		t.Fatal(err)
	}
	s.server = server
	mux := http.NewServeMux()
	for pattern, h := range opts.extraRoutes {
		mux.Handle(pattern, h)
	}
	var v1 http.Handler = server
	if opts.record {
		v1 = s.recorder(server)
	}
	mux.Handle("/v1/", v1)
	s.http = httptest.NewServer(mux)
	t.Cleanup(s.http.Close)
	s.url = s.http.URL
	return s
}

// testConfig fills in what every test's API has unless it says otherwise:
// the write keys (testWriteKey, testServerKey), the settings' deployment.js
// and a logger.
func testConfig(cfg api.Config, log *zap.Logger) api.Config {
	if cfg.WriteKeys == nil {
		cfg.WriteKeys = []string{testWriteKey}
		cfg.ServerWriteKeys = []string{testServerKey}
		cfg.IdentitySecret = []byte(mappingtest.IdentitySecret)
	}
	if cfg.DeploymentScriptURL == "" {
		cfg.DeploymentScriptURL = mappingtest.Settings().ScriptURL()
	}
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	return cfg
}

// newFakeStack is the API over in-memory fakes (apifake) on an httptest
// server: no Postgres and no Kafka, for the tests of the HTTP layer alone
// (parameters, CORS, limits, the snippet, ingest validation). Its
// documents are those the test puts in s.docs; what the ingest produced is
// in s.producer, and s.topicMessages reads it as a stack's topic. These
// tests run under -short.
func newFakeStack(t testing.TB, cfg api.Config) *stack {
	t.Helper()
	s := &stack{t: t, docs: &apifake.Documents{}, notifier: &apifake.Notifier{}, producer: &apifake.Producer{}}
	cfg = testConfig(cfg, zaptest.NewLogger(t).Named("api"))
	var producer api.Producer = s.producer
	if len(cfg.WriteKeys) == 0 {
		producer = nil
	}
	server, err := api.New(cfg, s.docs, s.notifier, producer)
	if err != nil {
		t.Fatal(err)
	}
	s.server = server
	s.http = httptest.NewServer(server)
	t.Cleanup(s.http.Close)
	s.url = s.http.URL
	return s
}

// waiters is the number of parked long-polls.
func (s *stack) waiters() int {
	if s.notifier != nil {
		return s.notifier.Waiters()
	}
	return s.hub.Waiters()
}

// recorder records each request before next serves it.
func (s *stack) recorder(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Lock()
		s.requests = append(s.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get(api.TokenHeader), body})
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// recorded returns the requests the API received so far (stackOptions.record).
func (s *stack) recorded() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request to the stack and reads the whole answer.
func (s *stack) do(method, path, body string, header map[string]string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b, took: time.Since(start)}
}

// topicMessages returns every message in the stack's topic (of a fake
// stack: every record produced, in order).
func (s *stack) topicMessages() []kafka.Message {
	s.t.Helper()
	var out []kafka.Message
	if s.producer != nil {
		for _, r := range s.producer.Records() {
			out = append(out, kafka.Message{Key: r.Key, Value: r.Value})
		}
		return out
	}
	for p := range 2 {
		conn, err := kafka.DialLeader(context.Background(), "tcp", s.brokers[0], s.topic, p)
		if err != nil {
			s.t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.brokers, Topic: s.topic, Partition: p, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for int64(len(out)) >= 0 {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				s.t.Fatalf("read partition %d: %v", p, err)
			}
			out = append(out, m)
			if m.Offset == last-1 {
				break
			}
		}
		cancel()
		r.Close()
	}
	return out
}

// events is a visitor's identify, group and conversation start, stamped now.
func visitorEvents(anon string, now time.Time) (identify, group, start string) {
	at := now.UTC().Format(time.RFC3339Nano)
	identify = `{"type":"identify","messageId":"` + anon + `-i","anonymousId":"` + anon + `","userId":"` + anon + `-user","traits":{"email":"ada@example.com","firstName":"Ada","lastName":"Lovelace","secret":"not mapped"},"timestamp":"` + at + `"}`
	group = `{"type":"group","messageId":"` + anon + `-g","anonymousId":"` + anon + `","groupId":"acme","traits":{"website":"acme.test","revenue":100},"timestamp":"` + at + `"}`
	start = `{"type":"track","messageId":"` + anon + `-c","anonymousId":"` + anon + `","event":"Live Chat Conversation Started","properties":{"caseStatus":"New","subject":"Shoes"},"timestamp":"` + at +
		`","context":{"prechat":{"tokenHash":"` + tokenHash(secretOf(anon)) + `"}}}`
	return identify, group, start
}

// secretOf is the conversation secret of anon's page in these tests: the
// conversation start of visitorEvents carries its hash.
func secretOf(anon string) string { return "secret-of-" + anon }

// tokenHash is what a conversation start carries for secret: its
// lowercase hex SHA-256.
func tokenHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// get fetches anon's document as its page does, with the conversation
// secret of visitorEvents; query is "" or starts with "?".
func (s *stack) get(anon, query string) response {
	s.t.Helper()
	return s.do("GET", "/v1/prechat/"+anon+query, "", map[string]string{api.TokenHeader: secretOf(anon)})
}

// startConversation produces a conversation start for anon, waits until its
// document is served, and returns the visitor's other events, not produced.
func (s *stack) startConversation(anon string) (identify, group, start string) {
	s.t.Helper()
	identify, group, start = visitorEvents(anon, time.Now())
	s.produce(start)
	if r := s.get(anon, "?wait=20&after="+anon+"-c"); r.status != http.StatusOK {
		s.t.Fatalf("document of %s's conversation start: %d %s", anon, r.status, r.body)
	}
	return identify, group, start
}

// apiConfigWithoutIngest is an API configuration with ingest disabled.
func apiConfigWithoutIngest() api.Config { return api.Config{WriteKeys: []string{}} }

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// waitParked waits until waiters (a notifier's count of subscriptions)
// reaches n: the long-polls are parked, neither answered nor failed. A
// value on answered first, or 10 seconds without it, fails the test.
func waitParked(t testing.TB, waiters func() int, n int, answered <-chan response) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for waiters() < n {
		select {
		case r := <-answered:
			t.Fatalf("answered before it was parked: %d %s", r.status, r.body)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d long-polls parked within 10s", waiters(), n)
		}
	}
}
