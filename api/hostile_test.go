package api_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/api"
)

// slowPost opens a connection to the stack and sends a POST whose headers
// announce contentLength bytes of body, then only the first part of body:
// a sender that stalls. The connection closes when the test ends.
func (s *stack) slowPost(path string, header map[string]string, contentLength int, part string) net.Conn {
	s.t.Helper()
	u, err := url.Parse(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n", path, u.Host, contentLength)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + part)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		s.t.Fatal(err)
	}
	return conn
}

// waitIngestsHeld waits until requests ingest requests hold a slot and
// bytes of body between them (the slow posts are being read).
func (s *stack) waitIngestsHeld(requests int, bytes int64) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, b := s.server.IngestsHeld()
		if r == requests && b == bytes {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ingests hold %d slots and %d bytes after 10s, want %d and %d", r, b, requests, bytes)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// answer reads the response on conn within d.
func answer(t *testing.T, conn net.Conn, d time.Duration) (*http.Response, time.Duration) {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(d))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", d, err)
	}
	res.Body.Close()
	return res, time.Since(start)
}

// TestIngestChecksTheWriteKeyBeforeReadingTheBody: a request with an
// unknown Basic auth key is refused at once, without waiting for a body
// that is still on its way.
func TestIngestChecksTheWriteKeyBeforeReadingTheBody(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{IngestReadTimeout: time.Minute})
	conn := s.slowPost("/v1/b", map[string]string{"Authorization": basicAuth("nope")}, 400<<10, `{"batch":[`)
	res, took := answer(t, conn, 5*time.Second)
	if res.StatusCode != http.StatusUnauthorized || took > 2*time.Second {
		t.Fatalf("unknown key with a stalled body: %d after %v, want 401 at once", res.StatusCode, took)
	}
	// Nor does a small stalled body (which net/http would drain before
	// answering) delay the refusal.
	conn = s.slowPost("/v1/t", map[string]string{"Authorization": basicAuth("nope")}, 1000, `{"event":`)
	if res, took := answer(t, conn, 5*time.Second); res.StatusCode != http.StatusUnauthorized || took > 2*time.Second {
		t.Fatalf("unknown key with a small stalled body: %d after %v, want 401 at once", res.StatusCode, took)
	}
}

// TestIngestSlowBodyTimesOutAndFreesItsSlot: a body that does not arrive
// within IngestReadTimeout gets 408, and its request slot is free again.
func TestIngestSlowBodyTimesOutAndFreesItsSlot(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{MaxIngestRequests: 1, IngestReadTimeout: 500 * time.Millisecond})
	auth := map[string]string{"Authorization": basicAuth(testWriteKey)}
	conn := s.slowPost("/v1/t", auth, 1000, `{"event":`)
	s.waitIngestsHeld(1, 1000)
	if r := s.do("POST", "/v1/t", `{"event":"e","anonymousId":"a"}`, auth); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("second request while the only slot is held: %d %v %s", r.status, r.header, r.body)
	}
	res, took := answer(t, conn, 5*time.Second)
	if res.StatusCode != http.StatusRequestTimeout || took > 2*time.Second {
		t.Fatalf("stalled body: %d after %v, want 408 after about 500ms", res.StatusCode, took)
	}
	if r := s.do("POST", "/v1/t", `{"event":"e","anonymousId":"a"}`, auth); r.status != http.StatusOK {
		t.Fatalf("after the slow body timed out: %d %s", r.status, r.body)
	}
}

// TestIngestCapsRequestsPerClient: one client's slow bodies hold at most
// MaxIngestRequestsPerClient slots; its next request gets 429, another
// client's goes through.
func TestIngestCapsRequestsPerClient(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{MaxIngestRequestsPerClient: 2, IngestReadTimeout: time.Minute, ClientIPHeader: "X-Forwarded-For"})
	slow := map[string]string{"Authorization": basicAuth(testWriteKey), "X-Forwarded-For": "192.0.2.1"}
	s.slowPost("/v1/t", slow, 1000, `{"event":`)
	s.slowPost("/v1/t", slow, 1000, `{"event":`)
	s.waitIngestsHeld(2, 2000)
	if r := s.do("POST", "/v1/t", `{"event":"e","anonymousId":"a"}`, slow); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("a third request of the client holding two: %d %v %s", r.status, r.header, r.body)
	}
	other := map[string]string{"Authorization": basicAuth(testWriteKey), "X-Forwarded-For": "192.0.2.2"}
	if r := s.do("POST", "/v1/t", `{"event":"e","anonymousId":"a"}`, other); r.status != http.StatusOK {
		t.Fatalf("another client: %d %s", r.status, r.body)
	}
}

// TestIngestCapsBytesInFlight: requests reserve their Content-Length (or
// their size limit when it is unknown) from MaxIngestBytes; one that does
// not fit gets 503, a smaller one that fits goes through.
func TestIngestCapsBytesInFlight(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{
		MaxBatchBytes: 40000, MaxEventBytes: 10000, MaxIngestBytes: 60000, IngestReadTimeout: time.Minute})
	auth := map[string]string{"Authorization": basicAuth(testWriteKey)}
	s.slowPost("/v1/b", auth, 40000, `{"batch":[`) // holds 40,000 bytes
	s.waitIngestsHeld(1, 40000)
	conn := s.slowPost("/v1/b", auth, 30000, `{"batch":[`)
	if res, _ := answer(t, conn, 5*time.Second); res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a batch beyond the byte budget: %d %v", res.StatusCode, res.Header)
	}
	if r := s.do("POST", "/v1/t", `{"event":"e","anonymousId":"a"}`, auth); r.status != http.StatusOK {
		t.Fatalf("a small event within the budget: %d %s", r.status, r.body)
	}
}

// TestIngestRateLimitPerClient: the ingest has its own per-client limit,
// keyed like the document fetches'.
func TestIngestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{IngestRateLimit: 0.5, IngestRateBurst: 2, ClientIPHeader: "X-Forwarded-For"})
	post := func(ip string) response {
		return s.do("POST", "/v1/t", `{"event":"e","anonymousId":"a"}`, map[string]string{"Authorization": basicAuth(testWriteKey), "X-Forwarded-For": ip})
	}
	for i := range 2 {
		if r := post("192.0.2.1"); r.status != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	if r := post("192.0.2.1"); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" || r.json(t)["error"] != "rate_limited" {
		t.Fatalf("over the limit: %d %v %s", r.status, r.header, r.body)
	}
	if r := post("192.0.2.2"); r.status != http.StatusOK {
		t.Fatalf("another client: %d %s", r.status, r.body)
	}
}

// TestIngestRefusesOversizedBatchesWhileDecoding: a batch over
// MaxBatchEvents is refused by its count even when what follows is not
// JSON: the decoder stopped there.
func TestIngestRefusesOversizedBatchesWhileDecoding(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{})
	body := `{"writeKey":"` + testWriteKey + `","batch":[` + strings.Repeat(`{},`, 2501) + `this is not JSON`
	r := s.do("POST", "/v1/b", body, nil)
	if r.status != http.StatusBadRequest || !strings.Contains(r.json(t)["message"].(string), "at most 2500 events") {
		t.Fatalf("oversized batch: %d %s", r.status, r.body)
	}
}

// TestSpoofedForwardedForDoesNotEvadeTheRateLimit: a client that writes a
// new X-Forwarded-For address on every request is still limited by the
// address the proxy appended.
func TestSpoofedForwardedForDoesNotEvadeTheRateLimit(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{RateLimit: 1, RateBurst: 3, ClientIPHeader: "X-Forwarded-For"})
	limited := 0
	for i := range 10 {
		r := s.do("GET", "/v1/prechat/x", "", map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d, 192.0.2.1", i)})
		if r.status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 6 {
		t.Fatalf("%d of 10 spoofed requests limited, want at least 6 (a burst of 3)", limited)
	}
}

// TestCORSWildcardNeverAllowsCredentials: ALLOWED_ORIGINS=* answers any
// origin with "*" and no credentials; a listed origin is echoed with them.
func TestCORSWildcardNeverAllowsCredentials(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{AllowedOrigins: []string{"*", "https://shop.example"}})
	for _, method := range []string{"GET", "OPTIONS"} {
		h := map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
		r := s.do(method, "/v1/prechat/x", "", h)
		if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s from any origin under *: %v", method, r.header)
		}
		h["Origin"] = "https://shop.example"
		r = s.do(method, "/v1/prechat/x", "", h)
		if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%s from a listed origin: %v", method, r.header)
		}
	}
}

// TestEveryAnswerIsNosniff: every answer of the public port, whatever its
// status, carries X-Content-Type-Options: nosniff.
func TestEveryAnswerIsNosniff(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{AllowedOrigins: []string{"https://shop.example"}})
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/prechat.js", ""},
		{"GET", "/v1/prechat/nobody", ""},
		{"GET", "/v1/prechat/bad%20id", ""},
		{"GET", "/v1/unknown", ""},
		{"DELETE", "/v1/prechat/x", ""},
		{"POST", "/v1/t", `{"event":"e","anonymousId":"a"}`},
		{"POST", "/v1/t", `{"event":"e","anonymousId":"a","writeKey":"` + testWriteKey + `"}`},
		{"OPTIONS", "/v1/t", ""},
	} {
		r := s.do(c.method, c.path, c.body, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: %d without nosniff: %v", c.method, c.path, r.status, r.header)
		}
	}
}
