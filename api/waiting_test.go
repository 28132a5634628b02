package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/persistence"
)

// countingDocs counts the document reads that reach the real store.
type countingDocs struct {
	api.Documents
	gets atomic.Int64
}

func (c *countingDocs) DocumentRead(ctx context.Context, anonymousID string) ([]byte, string, string, error) {
	c.gets.Add(1)
	return c.Documents.DocumentRead(ctx, anonymousID)
}

// TestUnknownVisitorLongPollsQueryOnce: the answer "no document" is
// cached, so the rechecks of long-polls for a visitor without a document
// (about 50 here, over two requests) read Postgres once; and the
// notification of its conversation start drops that answer at once, so a
// waiting page gets its document without waiting for the cache entry to
// age.
func TestUnknownVisitorLongPollsQueryOnce(t *testing.T) {
	t.Parallel()
	docs := &countingDocs{}
	s := newStack(t, stackOptions{
		api:      api.Config{RecheckInterval: 20 * time.Millisecond, RateLimit: -1},
		wrapDocs: func(d api.Documents) api.Documents { docs.Documents = d; return docs },
	})
	s.waitListening()
	for range 2 {
		if r := s.get("ghost", "?wait=0.5"); r.status != http.StatusNotFound {
			t.Fatalf("unknown visitor: %d %s", r.status, r.body)
		}
	}
	if n := docs.gets.Load(); n != 1 {
		t.Fatalf("two 0.5 s long-polls rechecking every 20 ms read the store %d times, want 1", n)
	}

	done := make(chan response, 1)
	go func() { done <- s.get("ghost", "?wait=20") }()
	waitParked(t, s.hub.Waiters, 1, done)
	_, _, start := visitorEvents("ghost", time.Now())
	s.produce(start)
	r := <-done
	if r.status != http.StatusOK || r.json(t)["anonymousId"] != "ghost" {
		t.Fatalf("long-poll across the conversation start: %d %s", r.status, r.body)
	}
	if r.took > 10*time.Second {
		t.Fatalf("the conversation start did not drop the cached absence: answered after %v", r.took)
	}
}

// waitListening returns once the hub receives notifications and none of
// its probes is still on its way: the hub's connection drops every cached
// answer, and a notification during a read keeps that read out of the
// cache, which a test counting reads must not mistake for cache misses.
// Postgres delivers notifications in commit order, so once the last probe
// arrived every earlier one arrived or was sent before the hub listened.
func (s *stack) waitListening() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := 0; ; i++ {
		probe := fmt.Sprintf("listening-probe-%d", i)
		woken, stop := s.hub.Subscribe(probe)
		if _, err := conn.Exec(ctx, `SELECT pg_notify($1, $2)`, persistence.NotifyChannel, probe); err != nil {
			s.t.Fatal(err)
		}
		select {
		case <-woken:
			stop()
			return
		case <-ctx.Done():
			s.t.Fatal("the hub did not receive a notification within 10s")
		case <-time.After(50 * time.Millisecond):
		}
		stop()
	}
}

// TestLongPollsPerClientAreCapped: one client holds at most
// MaxWaitersPerClient long-polls; beyond them it gets 429 with
// Retry-After, while other clients still wait, and its places come back
// when its long-polls end.
func TestLongPollsPerClientAreCapped(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{MaxWaitersPerClient: 2, ClientIPHeader: "X-Forwarded-For", RateLimit: -1})
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if r := s.do("GET", fmt.Sprintf("/v1/prechat/parked-%d?wait=1", i), "", from("192.0.2.1")); r.status != http.StatusNotFound {
				t.Errorf("parked long-poll %d: %d %s", i, r.status, r.body)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.waiters() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if r := s.do("GET", "/v1/prechat/third?wait=1", "", from("192.0.2.1")); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.json(t)["error"] != "rate_limited" {
		t.Fatalf("a third long-poll of the client: %d %v %s", r.status, r.header, r.body)
	}
	if r := s.do("GET", "/v1/prechat/other?wait=0.2", "", from("192.0.2.2")); r.status != http.StatusNotFound || r.took < 200*time.Millisecond {
		t.Fatalf("another client's long-poll: %d after %v", r.status, r.took)
	}
	wg.Wait()
	if r := s.do("GET", "/v1/prechat/again?wait=0.2", "", from("192.0.2.1")); r.status != http.StatusNotFound {
		t.Fatalf("the client's long-poll after its others ended: %d %s", r.status, r.body)
	}
}

// TestSaturatedPoolAnswers503: when Postgres stops answering (here a lock
// holds the document table) and the pool's only connection is stuck, each
// document request, long-polls included, answers 503 with Retry-After
// within ReadTimeout instead of hanging; the pool serves again once
// Postgres does.
func TestSaturatedPoolAnswers503(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{
		noConsumer: true,
		store:      &persistence.Config{MaxConns: 1},
		api:        api.Config{ReadTimeout: 300 * time.Millisecond, CacheSize: -1, RateLimit: -1},
	})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE prechat_documents IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string, time.Duration, error) {
		start := time.Now()
		res, err := client.Get(s.url + path)
		if err != nil {
			return 0, "", time.Since(start), err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After"), time.Since(start), nil
	}
	var wg sync.WaitGroup
	for i, path := range []string{"/v1/prechat/a", "/v1/prechat/b", "/v1/prechat/c?wait=10"} {
		wg.Go(func() {
			status, retry, took, err := get(path)
			if err != nil || status != http.StatusServiceUnavailable || retry == "" || took > 3*time.Second {
				t.Errorf("request %d (%s) with the pool stuck: %d Retry-After %q after %v, %v", i, path, status, retry, took, err)
			}
		})
	}
	wg.Wait()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The stuck connection was cancelled and is replaced: within seconds
	// (a new connection each time a slow machine's connect outlasts
	// ReadTimeout) the pool serves again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, took, err := get("/v1/prechat/d")
		if err == nil && status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the lock: %d after %v, %v", status, took, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
