package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// apiOnly starts "processor serve" with ROLES=api on a migrated database,
// Kafka at an address where nothing listens, and env added; it returns the
// admin base URL and the database URL.
func apiOnly(t *testing.T, env ...string) (admin, dbURL string) {
	t.Helper()
	_, dbURL = persistencetest.NewStore(t, nil)
	admin, _ = apiOnlyOn(t, dbURL, env...)
	return admin, dbURL
}

// apiOnlyOn is apiOnly on the database of dbURL.
func apiOnlyOn(t *testing.T, dbURL string, env ...string) (admin string, proc *child) {
	t.Helper()
	proc = startProcessor(t, append([]string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=127.0.0.1:1", "ROLES=api",
		"SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON), "HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0"}, env...), "serve")
	return "http://" + proc.logAddr(t, "admin listening", 10*time.Second), proc
}

// readyz is /readyz's status code and its parts.
func readyz(t *testing.T, admin string) (int, map[string]string) {
	t.Helper()
	code, body := get(admin + "/readyz")
	var parts map[string]string
	if err := json.Unmarshal([]byte(body), &parts); err != nil {
		return code, map[string]string{"answer": body}
	}
	return code, parts
}

// TestReadinessTakesNoMigrationLock: while a migration holds tern's
// advisory lock (processor migrate during a rolling upgrade), serve starts
// and /readyz answers 200: the schema version is read with one query, no
// migrator; once current it is not read again, probes only ping.
func TestReadinessTakesNoMigrationLock(t *testing.T) {
	t.Parallel()
	_, dbURL := persistencetest.NewStore(t, nil)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const ternLock int64 = 9628173550095224 // tern's migrate.lockNum
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, ternLock); err != nil {
		t.Fatal(err)
	}
	admin, proc := apiOnlyOn(t, dbURL)
	eventually(t, 10*time.Second, "ready while a migration holds its lock", func() bool { code, _ := readyz(t, admin); return code == http.StatusOK })
	// Checked once: a version table gone now (it never is) is not noticed.
	if _, err := conn.Exec(ctx, `ALTER TABLE prechat_schema_version RENAME TO moved_away`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		time.Sleep(1100 * time.Millisecond) // past the probe's one-second cache
		if code, parts := readyz(t, admin); code != http.StatusOK {
			t.Fatalf("/readyz re-read the schema version: %d %v; log:\n%s", code, parts, proc.stderr.String())
		}
	}
	// No probe waits on, or holds, an advisory lock.
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND l.pid <> pg_backend_pid() AND d.datname = current_database()`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d advisory locks of other sessions (%v)", n, err)
	}
}

// TestAPIReadinessNeedsKafkaOnlyForTheIngest: an api-only pod without write
// keys is ready while Kafka is unreachable, as it never uses it; with the
// ingest enabled it is not.
func TestAPIReadinessNeedsKafkaOnlyForTheIngest(t *testing.T) {
	t.Parallel()
	admin, _ := apiOnly(t)
	eventually(t, 10*time.Second, "ready without Kafka", func() bool { code, _ := readyz(t, admin); return code == http.StatusOK })
	if _, parts := readyz(t, admin); parts["postgres"] != "ok" || parts["schema"] != "ok" || parts["kafka"] != "" {
		t.Fatalf("/readyz of an api-only pod without ingest: %v", parts)
	}

	admin, _ = apiOnly(t, "WRITE_KEYS=wk-1")
	time.Sleep(1100 * time.Millisecond)
	code, parts := readyz(t, admin)
	if code != http.StatusServiceUnavailable || parts["kafka"] == "ok" || parts["kafka"] == "" || parts["postgres"] != "ok" {
		t.Fatalf("/readyz of an api-only pod with ingest and no Kafka: %d %v", code, parts)
	}
}

// TestPprofOnlyWhenEnabled: /debug/pprof/ is served only with PPROF=true,
// refuses profiles longer than 30 seconds, and every admin answer is
// nosniff.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	admin, _ := apiOnly(t)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/profile?seconds=1", "/debug/pprof/heap"} {
		if code, _ := get(admin + path); code != http.StatusNotFound {
			t.Errorf("%s without PPROF: %d, want 404", path, code)
		}
	}
	admin, _ = apiOnly(t, "PPROF=true")
	for path, want := range map[string]int{
		"/debug/pprof/":                     http.StatusOK,
		"/debug/pprof/heap?debug=1":         http.StatusOK,
		"/debug/pprof/profile?seconds=31":   http.StatusBadRequest,
		"/debug/pprof/profile?seconds=1e9":  http.StatusBadRequest,
		"/debug/pprof/trace?seconds=3600":   http.StatusBadRequest,
		"/debug/pprof/heap?seconds=100":     http.StatusBadRequest,
		"/debug/pprof/profile?seconds=soon": http.StatusBadRequest,
	} {
		if code, body := get(admin + path); code != want {
			t.Errorf("%s with PPROF=true: %d, want %d: %.200s", path, code, want, body)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/", "/nothing"} {
		res, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("admin %s: %d without nosniff", path, res.StatusCode)
		}
	}
}

// TestHostileLimitsConfiguration: the new limits are validated once, with
// the variable named.
func TestHostileLimitsConfiguration(t *testing.T) {
	t.Parallel()
	settings := writeSettings(t, mappingtest.SettingsJSON)
	base := []string{"DATABASE_URL=postgres://x@127.0.0.1/x", "KAFKA_BROKERS=127.0.0.1:9092", "SETTINGS_FILE=" + settings}
	for env, want := range map[string]string{
		"TRUSTED_PROXIES=proxy.internal":         `TRUSTED_PROXIES: "proxy.internal" is neither a proxy count nor a network`,
		"TRUSTED_PROXIES=0":                      "TRUSTED_PROXIES: 0 is not a proxy count from 1 to 16",
		"MAX_INGEST_BYTES=1000":                  "MAX_INGEST_BYTES: 1000 must be at least 512000",
		"MAX_INGEST_REQUESTS=0":                  "MAX_INGEST_REQUESTS: 0 must be at least 1",
		"MAX_INGEST_REQUESTS_PER_CLIENT=200":     "MAX_INGEST_REQUESTS_PER_CLIENT: 200 is not between 1 and MAX_INGEST_REQUESTS (128)",
		"INGEST_RATE_LIMIT=-1":                   "INGEST_RATE_LIMIT: -1 must not be negative",
		"RATE_LIMIT_CLIENTS=10":                  "RATE_LIMIT_CLIENTS: 10 must be at least 1000",
		"DATABASE_MAX_CONNS=3":                   "DATABASE_MAX_CONNS: 3 must be 0 (8 + APPLY_LANES) or at least APPLY_LANES + 2 (4)",
		"DATABASE_STATEMENT_TIMEOUT=10ms":        "DATABASE_STATEMENT_TIMEOUT: 10ms must be 0 (none) or at least 1s",
		"DATABASE_LOCK_TIMEOUT=-1s":              "DATABASE_LOCK_TIMEOUT: -1s must be 0 (none) or at least 1s",
		"DATABASE_IDLE_IN_TRANSACTION_TIMEOUT=x": "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT:",
		"PPROF=maybe":                            "PPROF:",
	} {
		code, _, stderr := runCmd(t, append(base, env), "serve")
		if code != exitUsage || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", env, code, stderr, exitUsage, want)
		}
	}
}
