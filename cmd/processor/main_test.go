package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/migrations"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// TestMain lets the test binary act as the processor binary, so tests can
// run it as a child process and signal it; as the test binary, it fails the
// run when a goroutine a test started outlives the tests.
func TestMain(m *testing.M) {
	if os.Getenv("PRECHAT_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
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

func runCmd(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = run(context.Background(), args, env, &out, &errb)
	return code, out.String(), errb.String()
}

// squash folds runs of white space, so table output can be matched.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func writeSettings(t *testing.T, body []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigurationErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	settings := writeSettings(t, mappingtest.SettingsJSON)
	base := []string{"DATABASE_URL=postgres://x@127.0.0.1/x", "KAFKA_BROKERS=127.0.0.1:9092", "SETTINGS_FILE=" + settings}
	bad := writeSettings(t, []byte(`{"hostname":"c.x","liveAgentEndpointUrl":"d.x","deploymentId":"5723D00000000F4","orgId":"00D3D000000DIdG","caseMappings":[{"key":"s","value":{"property":"subject","fieldName":"Subject"}}]}`))
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no database", []string{"KAFKA_BROKERS=a:1", "SETTINGS_FILE=" + settings}, nil, "DATABASE_URL: required"},
		{"no brokers", []string{"DATABASE_URL=postgres://x@h/x", "SETTINGS_FILE=" + settings}, nil, "KAFKA_BROKERS: required"},
		{"broker without port", append(base, "KAFKA_BROKERS=kafka"), nil, `KAFKA_BROKERS: "kafka" is not host:port`},
		{"bad ttl", append(base, "PRECHAT_TTL=soon"), nil, "PRECHAT_TTL:"},
		{"negative ttl", append(base, "PRECHAT_TTL=-1m"), nil, "PRECHAT_TTL: -1m0s must be positive"},
		{"batch size over the cap", append(base, "BATCH_SIZE=100001"), nil, "BATCH_SIZE: 100001 is not between 1 and 100000"},
		{"negative batch size", append(base, "BATCH_SIZE=-1"), nil, "BATCH_SIZE: -1 is not between"},
		{"too many apply lanes", append(base, "APPLY_LANES=17"), nil, "APPLY_LANES: 17 is not between 1 and 16"},
		{"negative apply lanes", append(base, "APPLY_LANES=-1"), nil, "APPLY_LANES: -1 is not between 1 and 16"},
		{"heartbeat over half the session", append(base, "KAFKA_HEARTBEAT_INTERVAL=20s"), nil, "KAFKA_HEARTBEAT_INTERVAL: 20s must be positive and at most half of the session timeout (30s)"},
		{"negative batch timeout", append(base, "BATCH_TIMEOUT=-1s"), nil, "BATCH_TIMEOUT: -1s must be positive"},
		{"bad log level", append(base, "LOG_LEVEL=loud"), nil, `LOG_LEVEL: "loud"`},
		{"bad start offset", append(base, "KAFKA_START_OFFSET=middle"), nil, "KAFKA_START_OFFSET:"},
		{"bad sasl", append(base, "KAFKA_SASL_MECHANISM=gssapi"), nil, "KAFKA_SASL_MECHANISM:"},
		{"sasl without user", append(base, "KAFKA_SASL_MECHANISM=plain"), nil, "KAFKA_SASL_USERNAME: required"},
		{"unknown role", append(base, "ROLES=consumer,frobnicator"), nil, `ROLES: "frobnicator"`},
		{"bad http address", append(base, "HTTP_ADDR=8080"), nil, `HTTP_ADDR: "8080" is not host:port`},
		{"bad origin", append(base, "ALLOWED_ORIGINS=shop.example"), nil, `ALLOWED_ORIGINS: "shop.example" is not an origin`},
		{"empty write key", append(base, "WRITE_KEYS=a,,b"), nil, "WRITE_KEYS: holds an empty key"},
		{"negative rate limit", append(base, "RATE_LIMIT=-2"), nil, "RATE_LIMIT: -2 must not be negative"},
		{"no waiters", append(base, "MAX_WAITERS=0"), nil, "MAX_WAITERS: 0 must be at least 1"},
		{"short identity secret", append(base, "IDENTITY_SECRET=hunter2"), nil, "IDENTITY_SECRET: each secret must be at least 32 characters"},
		{"short second identity secret", append(base, "IDENTITY_SECRET="+mappingtest.IdentitySecret+",short"), nil, "IDENTITY_SECRET: each secret must be at least 32"},
		{"missing jwt keys file", append(base, "IDENTITY_JWT_KEYS=/nonexistent/jwks.json"), nil, "IDENTITY_JWT_KEYS: open /nonexistent/jwks.json"},
		{"private jwt key", append(base, "IDENTITY_JWT_KEYS="+writeSettings(t, []byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}]}`))), nil, "is a private key: publish only public keys"},
		{"issuer without keys", append(base, "IDENTITY_JWT_ISSUER=https://www.example.com"), nil, "IDENTITY_JWT_KEYS: required when IDENTITY_JWT_ISSUER"},
		{"server key without secret", append(base, "SERVER_WRITE_KEYS=srv"), nil, "SERVER_WRITE_KEYS: needs IDENTITY_SECRET"},
		{"server key that is public", append(base, "WRITE_KEYS=pub,srv", "SERVER_WRITE_KEYS=srv", "IDENTITY_SECRET="+mappingtest.IdentitySecret), nil, "SERVER_WRITE_KEYS: a key is also in WRITE_KEYS"},
		{"zero time window", append(base, "EVENT_TIME_FUTURE=0s"), nil, "EVENT_TIME_FUTURE: 0s must be positive"},
		{"unknown document access", append(base, "DOCUMENT_ACCESS=anyone"), nil, `DOCUMENT_ACCESS: "anyone" is not token or anonymousId`},
		{"no waiters per client", append(base, "MAX_WAITERS_PER_CLIENT=0"), nil, "MAX_WAITERS_PER_CLIENT: 0 must be at least 1"},
		{"no read timeout", append(base, "DOCUMENT_READ_TIMEOUT=0s"), nil, "DOCUMENT_READ_TIMEOUT: 0s must be positive"},
		{"missing settings file", base[:2], nil, "SETTINGS_FILE: required"},
		{"invalid settings file", append(base, "SETTINGS_FILE="+bad), nil, "caseMappings[0].value.label: required"},
		{"flag overrides env", base, []string{"--prechat-ttl=never"}, "PRECHAT_TTL:"},
		{"unknown flag", base, []string{"--colour=blue"}, "flag provided but not defined: -colour"},
		{"stray argument", base, []string{"now"}, "unexpected arguments: now"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, c.env, append([]string{"serve"}, c.args...)...)
			if code != exitUsage || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, c.want)
			}
		})
	}
}

func TestSettingsCheck(t *testing.T) {
	t.Parallel()
	code, out, stderr := runCmd(t, nil, "settings", "check", writeSettings(t, mappingtest.SettingsJSON))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"valid",
		"https://c.la3-c1cs-phx.salesforceliveagent.com/content/g/js/29.0/deployment.js",
		"https://d.la3-c1cs-phx.salesforceliveagent.com/chat, 5723D00000000F4, 00D3D000000DIdG",
		`email      "User Email"  yes             Contact.Email      yes   yes    yes`,
		`revenue  "Account Revenue"  yes             Account.AnnualRevenue  no    no     no`,
		`setName(firstName + " " + lastName)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, _, stderr = runCmd(t, nil, "settings", "check", writeSettings(t, []byte(`{"hostname":"c.x","liveAgentEndpointUrl":"d.x","deploymentId":"123","orgId":"00D3D000000DIdG"}`)))
	if code != 1 || !strings.Contains(stderr, `deploymentId: "123" is not a 15 or 18 character Salesforce id`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCmd(t, nil, "settings", "lint"); code != exitUsage {
		t.Fatalf("wrong subcommand: exit %d, want %d", code, exitUsage)
	}
}

func TestMigrateUpAndStatus(t *testing.T) {
	t.Parallel()
	env := []string{"DATABASE_URL=" + persistencetest.NewEmptyDatabase(t)}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) < 4 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	latest := len(files)
	code, out, stderr := runCmd(t, env, "migrate", "status")
	if code != 0 || !strings.Contains(squash(out), "001 initial pending") || !strings.Contains(out, fmt.Sprintf("database at version 0 of %d", latest)) {
		t.Fatalf("status before: exit %d\n%s%s", code, out, stderr)
	}
	code, _, stderr = runCmd(t, append(env, "KAFKA_BROKERS=127.0.0.1:1", "SETTINGS_FILE="+writeSettings(t, mappingtest.SettingsJSON)), "serve")
	if code != 1 || !strings.Contains(stderr, "run processor migrate") {
		t.Fatalf("serve on an unmigrated database: exit %d, stderr %s", code, stderr)
	}
	code, out, stderr = runCmd(t, env, "migrate")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("schema migrated from version 0 to %d", latest)) {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = runCmd(t, env, "migrate", "up")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("from version %d to %d", latest, latest)) {
		t.Fatalf("migrate again: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, env, "migrate", "status")
	if code != 0 || !strings.Contains(squash(out), "001 initial applied 002 operations applied 003 document_compression applied 004 lighter_writes applied 005 trust applied 006 document_token applied") {
		t.Fatalf("status after: exit %d\n%s", code, out)
	}
}

// TestServeBinaryOverSASL runs the processor against a broker that requires
// SASL (and TLS, in the scram-sha-512 case, as managed Kafka services do):
// the ingest's writer, the consumer group and the partition fetchers all
// authenticate, so an ingested conversation start becomes a document.
func TestServeBinaryOverSASL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env, kfake string
		tls        bool
	}{{"plain", "PLAIN", false}, {"scram-sha-512", "SCRAM-SHA-512", true}} {
		t.Run(c.env, func(t *testing.T) {
			t.Parallel()
			topic := pipelinetest.Name(t, "topic")
			secure := pipelinetest.Secure{Mechanism: c.kfake, User: "prechat", Pass: "s3cret"}
			env := []string{"KAFKA_SASL_MECHANISM=" + c.env, "KAFKA_SASL_USERNAME=prechat", "KAFKA_SASL_PASSWORD=s3cret"}
			if c.tls {
				var caPEM []byte
				secure.TLS, caPEM = pipelinetest.SelfSignedTLS(t)
				ca := filepath.Join(t.TempDir(), "ca.pem")
				if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "KAFKA_TLS_CA_FILE="+ca)
			}
			brokers := pipelinetest.NewSecureCluster(t, secure, 2, topic)
			_, dbURL := persistencetest.NewStore(t, nil)
			proc := startProcessor(t, append(env,
				"DATABASE_URL="+dbURL, "KAFKA_BROKERS="+strings.Join(brokers, ","), "KAFKA_TOPIC="+topic,
				"KAFKA_GROUP="+pipelinetest.Name(t, "group"), "SETTINGS_FILE="+writeSettings(t, mappingtest.SettingsJSON),
				"HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "WRITE_KEYS=wk-1"), "serve")
			base := "http://" + proc.logAddr(t, "http listening", 10*time.Second)
			res, err := http.Post(base+"/v1/t", "text/plain", strings.NewReader(`{"writeKey":"wk-1","event":"Live Chat Conversation Started","anonymousId":"visitor-1","messageId":"c1","properties":{"subject":"Socks"},`+tokenContext+`}`))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("ingest over SASL: %d; processor log:\n%s", res.StatusCode, proc.stderr.String())
			}
			res, err = getDocument(base + "/v1/prechat/visitor-1?wait=20&after=c1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !hasDetail(body, "Subject", "Socks") {
				t.Fatalf("document over SASL: %d %s; processor log:\n%s", res.StatusCode, body, proc.stderr.String())
			}
		})
	}
}

// TestServeBinaryEndToEnd runs the processor as a child process: events
// produced to Kafka become a document, and SIGTERM stops it cleanly.
func TestServeBinaryEndToEnd(t *testing.T) {
	t.Parallel()
	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 2, topic)
	store, dbURL := persistencetest.NewStore(t, nil)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	pipelinetest.Produce(t, brokers, topic,
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"visitor-1","userId":"u1","traits":{"email":"ada@example.com","firstName":"Ada","lastName":"Lovelace","secret":"never leaves"},"timestamp":"`+now+`"}`),
		[]byte(`not json at all`),
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"visitor-1","event":"Live Chat Conversation Started","properties":{"subject":"Shoes"},"timestamp":"`+now+`",`+tokenContext+`}`),
	)

	proc := startProcessor(t, []string{
		"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
		"KAFKA_GROUP=" + pipelinetest.Name(t, "group"), "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON),
		"HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "WRITE_KEYS=wk-1,wk-2", "IDENTITY_SECRET=" + mappingtest.IdentitySecret, "PPROF=true"}, "serve", "--log-level=debug")
	stderr := &proc.stderr

	var doc []byte
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if doc, _, err = store.DocumentGet(context.Background(), "visitor-1"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if doc == nil {
		t.Fatalf("no document within 30s; processor log:\n%s", stderr.String())
	}
	if served, _ := servedDocument(doc); !hasDetail(doc, "User Email", "ada@example.com") || !hasDetail(doc, "Subject", "Shoes") || served.VisitorName != "Ada Lovelace" {
		t.Errorf("document lacks the user's email, the subject or the visitor name: %s", doc)
	}
	if bytes.Contains(doc, []byte("never leaves")) {
		t.Errorf("an unmapped trait leaked into the document: %s", doc)
	}

	// The api role serves the document and ingests events.
	base := "http://" + proc.logAddr(t, "http listening", 10*time.Second)
	res, err := getDocument(base + "/v1/prechat/visitor-1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if served, _ := servedDocument(body); res.StatusCode != http.StatusOK || served.VisitorName != "Ada Lovelace" {
		t.Fatalf("GET document: %d %s", res.StatusCode, body)
	}
	// processor dev's stand-in for the site's server, which signs any
	// userId, is not served: serve never hands out userHashes.
	for _, path := range []string{"/dev/user-hash?userId=u1", "/"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || bytes.Contains(body, []byte("userHash")) {
			t.Errorf("serve answers GET %s: %d %s, want 404", path, res.StatusCode, body)
		}
	}
	res, err = http.Post(base+"/v1/t", "text/plain", strings.NewReader(`{"writeKey":"wk-2","event":"Live Chat Conversation Started","anonymousId":"visitor-2","messageId":"c2","properties":{"subject":"Socks"},`+tokenContext+`}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", res.StatusCode)
	}
	res, err = getDocument(base + "/v1/prechat/visitor-2?wait=20&after=c2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !hasDetail(body, "Subject", "Socks") {
		t.Fatalf("document of the ingested conversation start: %d %s", res.StatusCode, body)
	}

	// The admin port: health, readiness, metrics and pprof, none of them public.
	admin := "http://" + proc.logAddr(t, "admin listening", 10*time.Second)
	for path, want := range map[string]string{
		"/healthz":      `"status":"ok"`,
		"/readyz":       `{"kafka":"ok","postgres":"ok","schema":"ok"}`,
		"/metrics":      `prechat_events_total{outcome="applied",type="identify"} 1`,
		"/debug/pprof/": "goroutine",
	} {
		res, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
			t.Errorf("admin %s: %d, want 200 with %s; got:\n%.2000s", path, res.StatusCode, want, body)
		}
	}
	metrics, _ := http.Get(admin + "/metrics")
	mbody, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{`prechat_events_total{outcome="dead_letter",type="invalid"} 1`, "prechat_consumer_lag{", "prechat_documents_written_total", "prechat_http_request_seconds_count{code=\"200\",route=\"prechat/{anonymousId}\"}", `prechat_ingest_events_total{result="produced"} 1`, "prechat_waiters 0", "prechat_batch_apply_seconds_bucket"} {
		if !bytes.Contains(mbody, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, path := range []string{"/metrics", "/healthz", "/debug/pprof/"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("public port serves %s: %d", path, res.StatusCode)
		}
	}

	if !proc.signal(syscall.SIGTERM, 20*time.Second) {
		t.Fatalf("processor did not stop within 20s of SIGTERM; log:\n%s", stderr.String())
	}
	if proc.err != nil {
		t.Fatalf("processor exited with %v after SIGTERM; log:\n%s", proc.err, stderr.String())
	}
	log := stderr.String()
	for _, want := range []string{`"msg":"starting"`, `"DATABASE_URL":"********"`, `"WRITE_KEYS":"********"`, `"msg":"dead letter"`, `"msg":"stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}
