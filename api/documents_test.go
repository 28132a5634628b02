package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/prechat/prechat/api"
)

// produce writes events straight to the topic, bypassing the ingest.
func (s *stack) produce(events ...string) {
	s.t.Helper()
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		msgs[i] = kafka.Message{Value: []byte(e)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.writer.WriteMessages(ctx, msgs...); err != nil {
		s.t.Fatal(err)
	}
}

func TestDocumentIsServedOnceApplied(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	if r := s.get("visitor-1", ""); r.status != http.StatusNotFound || r.json(t)["error"] != "not_found" {
		t.Fatalf("before any event: %d %s", r.status, r.body)
	}
	identify, group, start := visitorEvents("visitor-1", time.Now())
	s.produce(identify, group, start)
	r := s.get("visitor-1", "?wait=20&after=visitor-1-i,visitor-1-g,visitor-1-c")
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	doc := r.json(t)
	if doc["complete"] != true || doc["visitorName"] != "Ada Lovelace" || doc["conversationMessageId"] != "visitor-1-c" {
		t.Fatalf("unexpected document: %s", r.body)
	}
	if len(doc["details"].([]any)) != 7 {
		t.Fatalf("want 7 details: %s", r.body)
	}
	if strings.Contains(string(r.body), "not mapped") {
		t.Fatalf("an unmapped trait reached the API: %s", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers: %v", r.header)
	}
	// Without wait or after, a ready document answers at once too.
	if r := s.get("visitor-1", ""); r.status != http.StatusOK {
		t.Fatalf("plain GET: %d", r.status)
	}
}

// TestLongPollReturnsWhenTheDocumentCommits: a parked long-poll is woken
// by the commit's notification. The safety-net recheck is set beyond the
// test's bound, so only the notification path can answer in time: without
// it the request answers at its wait (20s), past the bound (10s).
func TestLongPollReturnsWhenTheDocumentCommits(t *testing.T) {
	t.Parallel()
	const bound = 10 * time.Second
	s := newStack(t, stackOptions{api: api.Config{RecheckInterval: time.Hour}})
	// The hub's (re)connection wakes every waiter too: it must not be what
	// answers.
	s.waitListening()
	identify, group, start := visitorEvents("visitor-2", time.Now())
	s.produce(identify, group)

	done := make(chan response, 1)
	go func() { done <- s.get("visitor-2", "?wait=20") }()
	// Parked: subscribed to notifications, and so not answered.
	waitParked(t, s.hub.Waiters, 1, done)
	produced := time.Now()
	s.produce(start)
	r := <-done
	if r.status != http.StatusOK || r.json(t)["conversationMessageId"] != "visitor-2-c" {
		t.Fatalf("long-poll: %d %s", r.status, r.body)
	}
	if took := time.Since(produced); took > bound {
		t.Fatalf("long-poll answered %v after the conversation start was produced, beyond %v: the commit's notification did not wake it", took, bound)
	}
}

func TestAfterWaitsForTheRequestedEvents(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	identify, group, _ := s.startConversation("visitor-3")
	// The identify and group are not applied yet: after= waits for them.
	done := make(chan response, 1)
	go func() {
		done <- s.get("visitor-3", "?wait=20&after=visitor-3-c,visitor-3-i,visitor-3-g")
	}()
	waitParked(t, s.hub.Waiters, 1, done)
	s.produce(identify, group)
	r := <-done
	doc := r.json(t)
	if r.status != http.StatusOK || doc["complete"] != true || doc["visitorName"] != "Ada Lovelace" || doc["groupId"] != "acme" {
		t.Fatalf("after the events: %d %s", r.status, r.body)
	}
}

func TestLongPollTimesOutAsSpecified(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startConversation("visitor-4")
	// A document that does not reflect an event never sent: 200, complete false.
	r := s.get("visitor-4", "?wait=0.5&after=never-sent")
	if r.status != http.StatusOK || r.json(t)["complete"] != false {
		t.Fatalf("after timeout with a document: %d %s", r.status, r.body)
	}
	if r.took < 500*time.Millisecond || r.took > 5*time.Second {
		t.Fatalf("wait=0.5 took %v", r.took)
	}
	// No document at all: 404 after the wait.
	r = s.do("GET", "/v1/prechat/nobody?wait=0.5", "", nil)
	if r.status != http.StatusNotFound || r.took < 500*time.Millisecond {
		t.Fatalf("no document: %d after %v", r.status, r.took)
	}
	// Without wait, after= waits the default instead of answering at once.
	r = s.get("visitor-4", "?after=visitor-4-c")
	if r.status != http.StatusOK || r.json(t)["complete"] != true {
		t.Fatalf("after an applied event: %d %s", r.status, r.body)
	}
}

func TestDocumentRequestValidation(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{})
	for _, path := range []string{
		"/v1/prechat/" + strings.Repeat("a", 129),
		"/v1/prechat/has%20space",
		"/v1/prechat/semi;colon",
		"/v1/prechat/x?wait=31",
		"/v1/prechat/x?wait=-1",
		"/v1/prechat/x?wait=soon",
		"/v1/prechat/x?after=" + strings.Repeat("m,", 21) + "m",
		"/v1/prechat/x?after=a,,b",
	} {
		if r := s.do("GET", path, "", nil); r.status != http.StatusBadRequest || r.json(t)["error"] != "bad_request" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := s.do("GET", "/v1/nothing-here", "", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", r.status)
	}
	if r := s.do("DELETE", "/v1/prechat/x", "", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", r.status)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{AllowedOrigins: []string{"https://shop.example"}})
	r := s.do("GET", "/v1/prechat/x", "", map[string]string{"Origin": "https://shop.example"})
	if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("allowed origin not echoed: %v", r.header)
	}
	r = s.do("GET", "/v1/prechat/x", "", map[string]string{"Origin": "https://evil.example"})
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a foreign origin was allowed: %v", r.header)
	}
	pre := map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
	r = s.do("OPTIONS", "/v1/t", "", pre)
	if r.status != http.StatusNoContent || !strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	pre["Origin"] = "https://evil.example"
	if r = s.do("OPTIONS", "/v1/t", "", pre); r.status != http.StatusForbidden {
		t.Fatalf("foreign preflight: %d", r.status)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{RateLimit: 1, RateBurst: 3, ClientIPHeader: "X-Forwarded-For"})
	client := func(ip string) int {
		return s.do("GET", "/v1/prechat/x", "", map[string]string{"X-Forwarded-For": ip}).status
	}
	for i := range 3 {
		if got := client("192.0.2.1"); got != http.StatusNotFound {
			t.Fatalf("request %d within the burst: %d", i, got)
		}
	}
	r := s.do("GET", "/v1/prechat/x", "", map[string]string{"X-Forwarded-For": "192.0.2.1"})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %v", r.status, r.header)
	}
	if got := client("192.0.2.2"); got != http.StatusNotFound {
		t.Fatalf("another client is limited too: %d", got)
	}
}

func TestWaiterCapAndDrain(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{MaxWaiters: 2})
	var wg sync.WaitGroup
	results := make(chan response, 2)
	for i := range 2 {
		wg.Go(func() { results <- s.do("GET", fmt.Sprintf("/v1/prechat/waiter-%d?wait=20", i), "", nil) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.waiters() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := s.do("GET", "/v1/prechat/third?wait=20", "", nil); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("beyond the waiter cap: %d %v", r.status, r.header)
	}
	// A shutdown answers parked requests at once with a retryable 503.
	start := time.Now()
	s.server.Drain()
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("drained waiter: %d %s", r.status, r.body)
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("drain took %v", time.Since(start))
	}
}

func TestCachedDocumentIsReplacedWhenTheVisitorChanges(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	identify, group, start := visitorEvents("visitor-5", time.Now())
	s.produce(identify, group, start)
	r := s.get("visitor-5", "?wait=20&after=visitor-5-i,visitor-5-g,visitor-5-c")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "ada@example.com") {
		t.Fatalf("first fetch: %d %s", r.status, r.body)
	}
	s.get("visitor-5", "") // served from the cache now
	at := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	s.produce(`{"type":"identify","messageId":"visitor-5-i2","anonymousId":"visitor-5","traits":{"email":"new@example.com"},"timestamp":"` + at + `"}`)
	r = s.get("visitor-5", "?wait=20&after=visitor-5-i2")
	if !strings.Contains(string(r.body), "new@example.com") {
		t.Fatalf("after the change: %s", r.body)
	}
	if r := s.get("visitor-5", ""); !strings.Contains(string(r.body), "new@example.com") {
		t.Fatalf("a plain fetch still serves the old document: %s", r.body)
	}
}

// TestAfterIsNotAnsweredFromAStaleCache: once the after= messageIds are
// applied, the document is read from storage. A cached one may predate the
// commit that applied them when that commit's notification (which drops the
// cache entry) is still on its way: here it never comes.
func TestAfterIsNotAnsweredFromAStaleCache(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startConversation("visitor-1")
	first := s.get("visitor-1", "") // cached from here on
	var doc map[string]any
	if err := json.Unmarshal(first.body, &doc); err != nil {
		t.Fatal(err)
	}
	doc["visitorName"] = "Changed Later"
	changed, _ := json.Marshal(doc)

	// A commit whose notification has not arrived: an applied messageId and
	// the document it changed, written without NOTIFY.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO applied_messages (message_id, event_type, anonymous_id) VALUES ('late-i', 'identify', 'visitor-1')`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE prechat_documents SET document = $1 WHERE anonymous_id = 'visitor-1'`, string(changed))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if r := s.get("visitor-1", ""); !bytes.Equal(r.body, first.body) {
		t.Fatalf("without after= the cached document should still be served (the cache is what this test bypasses): %s", r.body)
	}
	r := s.get("visitor-1", "?wait=5&after=late-i")
	if got := r.json(t); r.status != http.StatusOK || got["visitorName"] != "Changed Later" || got["complete"] != true {
		t.Fatalf("after=late-i served a document that predates it: %d %s", r.status, r.body)
	}
}
