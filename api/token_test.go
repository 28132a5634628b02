package api_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prechat/prechat/api"
)

// assertSameAnswer fails unless got is answer want: the same status, body
// and headers (Date aside).
func assertSameAnswer(t *testing.T, what string, got, want response) {
	t.Helper()
	if got.status != want.status || !bytes.Equal(got.body, want.body) {
		t.Errorf("%s: %d %s, want %d %s", what, got.status, got.body, want.status, want.body)
	}
	keys := func(h http.Header) []string {
		var k []string
		for name := range h {
			if name != "Date" {
				k = append(k, name)
			}
		}
		slices.Sort(k)
		return k
	}
	if !slices.Equal(keys(got.header), keys(want.header)) {
		t.Errorf("%s: headers %v, want %v", what, keys(got.header), keys(want.header))
	}
	for _, name := range keys(want.header) {
		if !slices.Equal(got.header.Values(name), want.header.Values(name)) {
			t.Errorf("%s: %s: %q, want %q", what, name, got.header.Values(name), want.header.Values(name))
		}
	}
}

// TestDocumentNeedsTheConversationSecret: without the secret whose hash
// the conversation start carried, a fetch gets exactly the answer for a
// visitor that does not exist, from the cache and from storage, at once
// and after a long-poll (which waits as long, also when after= names
// events that were applied).
func TestDocumentNeedsTheConversationSecret(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"from storage", -1}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOptions{api: api.Config{RateLimit: -1, CacheSize: c.cache}})
			s.startConversation("victim")
			s.startConversation("other")
			if r := s.get("victim", ""); r.status != http.StatusOK || r.json(t)["anonymousId"] != "victim" {
				t.Fatalf("with the secret: %d %s", r.status, r.body)
			}
			attempts := []struct {
				name   string
				header map[string]string
			}{
				{"no token", nil},
				{"an empty token", map[string]string{api.TokenHeader: ""}},
				{"a wrong token", map[string]string{api.TokenHeader: "guess"}},
				{"another visitor's token", map[string]string{api.TokenHeader: secretOf("other")}},
				{"the hash instead of the secret", map[string]string{api.TokenHeader: tokenHash(secretOf("victim"))}},
				{"the secret in upper case", map[string]string{api.TokenHeader: strings.ToUpper(secretOf("victim"))}},
				{"the secret twice", map[string]string{api.TokenHeader: secretOf("victim") + secretOf("victim")}},
			}
			unknown := s.do("GET", "/v1/prechat/nobody", "", nil)
			if unknown.status != http.StatusNotFound {
				t.Fatalf("unknown visitor: %d %s", unknown.status, unknown.body)
			}
			for _, a := range attempts {
				assertSameAnswer(t, a.name, s.do("GET", "/v1/prechat/victim", "", a.header), unknown)
			}

			// Long-polls: the wrong token waits the whole wait, like the
			// unknown visitor, even though the document exists and the
			// after= event was applied, then gets the same 404.
			polls := map[string]string{
				"unknown":                       "/v1/prechat/nobody?wait=1",
				"unknown, applied after=":       "/v1/prechat/nobody?wait=1&after=victim-c",
				"another visitor's token":       "/v1/prechat/victim?wait=1",
				"another visitor's token after": "/v1/prechat/victim?wait=1&after=victim-c",
			}
			var mu sync.Mutex
			got := map[string]response{}
			var wg sync.WaitGroup
			for name, path := range polls {
				wg.Go(func() {
					var h map[string]string
					if !strings.HasPrefix(name, "unknown") {
						h = map[string]string{api.TokenHeader: secretOf("other")}
					}
					r := s.do("GET", path, "", h)
					mu.Lock()
					got[name] = r
					mu.Unlock()
				})
			}
			wg.Wait()
			for name, r := range got {
				assertSameAnswer(t, name, r, unknown)
				if r.took < time.Second || r.took > 5*time.Second {
					t.Errorf("%s: answered after %v, want the whole wait (1s)", name, r.took)
				}
			}
		})
	}
}

// TestNewConversationStartRetiresTheOldSecret: a later conversation start
// of the visitor, from another page with its own secret, makes the first
// page's secret stop working; the new page reads its document with
// read-your-writes.
func TestNewConversationStartRetiresTheOldSecret(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startConversation("visitor")
	if r := s.get("visitor", ""); r.status != http.StatusOK { // cached from here on
		t.Fatalf("first page: %d %s", r.status, r.body)
	}
	at := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	s.produce(`{"type":"track","messageId":"visitor-c2","anonymousId":"visitor","event":"Live Chat Conversation Started","timestamp":"` + at +
		`","context":{"prechat":{"tokenHash":"` + tokenHash("second page") + `"}}}`)
	r := s.do("GET", "/v1/prechat/visitor?wait=20&after=visitor-c2", "", map[string]string{api.TokenHeader: "second page"})
	if r.status != http.StatusOK || r.json(t)["conversationMessageId"] != "visitor-c2" {
		t.Fatalf("second page: %d %s", r.status, r.body)
	}
	unknown := s.do("GET", "/v1/prechat/nobody", "", nil)
	assertSameAnswer(t, "the first page's secret", s.get("visitor", ""), unknown)
	assertSameAnswer(t, "the first page's secret, after=", s.get("visitor", "?wait=0.2&after=visitor-c"), s.do("GET", "/v1/prechat/nobody?wait=0.2&after=visitor-c", "", nil))
}

// TestStartWithoutTokenHashIsNeverServed: under DOCUMENT_ACCESS=token, a
// conversation start without a tokenHash gives a document that no request
// opens, not even one without the header or with an empty one; nor does
// a missing header open the document of a start that hashed an empty
// secret.
func TestStartWithoutTokenHashIsNeverServed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.produce(`{"type":"track","messageId":"bare-c","anonymousId":"bare","event":"Live Chat Conversation Started","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	for _, h := range []map[string]string{nil, {api.TokenHeader: ""}, {api.TokenHeader: "x"}} {
		if r := s.do("GET", "/v1/prechat/bare?wait=1&after=bare-c", "", h); r.status != http.StatusNotFound {
			t.Fatalf("token %q: %d %s", h[api.TokenHeader], r.status, r.body)
		}
	}
	if _, hash, err := s.store.DocumentGet(t.Context(), "bare"); err != nil || hash != "" {
		t.Fatalf("the document should exist without a token hash: hash %q, err %v", hash, err)
	}
	// A start that carried the hash of an empty secret: a request without
	// the header presents no secret, not an empty one.
	s.produce(`{"type":"track","messageId":"empty-c","anonymousId":"empty","event":"Live Chat Conversation Started","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) +
		`","context":{"prechat":{"tokenHash":"` + tokenHash("") + `"}}}`)
	for _, h := range []map[string]string{nil, {api.TokenHeader: ""}} {
		if r := s.do("GET", "/v1/prechat/empty?wait=1&after=empty-c", "", h); r.status != http.StatusNotFound {
			t.Fatalf("token %q for the hash of an empty secret: %d %s", h[api.TokenHeader], r.status, r.body)
		}
	}
}

// TestDocumentAccessAnonymousID: DOCUMENT_ACCESS=anonymousId serves the
// document to whoever names the visitor, as before conversation secrets,
// with or without a tokenHash on the start.
func TestDocumentAccessAnonymousID(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{api: api.Config{DocumentAccess: api.AccessAnonymousID}})
	s.startConversation("visitor")
	if r := s.do("GET", "/v1/prechat/visitor", "", nil); r.status != http.StatusOK || r.json(t)["anonymousId"] != "visitor" {
		t.Fatalf("without a token: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/v1/prechat/visitor", "", map[string]string{api.TokenHeader: "wrong"}); r.status != http.StatusOK {
		t.Fatalf("with a wrong token: %d %s", r.status, r.body)
	}
	s.produce(`{"type":"track","messageId":"bare-c","anonymousId":"bare","event":"Live Chat Conversation Started","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	if r := s.do("GET", "/v1/prechat/bare?wait=20&after=bare-c", "", nil); r.status != http.StatusOK {
		t.Fatalf("a start without tokenHash: %d %s", r.status, r.body)
	}
}

func TestDocumentAccessIsValidated(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{})
	_, err := api.New(api.Config{DocumentAccess: "anonymousid", DeploymentScriptURL: "https://x.test/deployment.js"}, s.docs, s.notifier, nil)
	if err == nil || !strings.Contains(err.Error(), `DocumentAccess: "anonymousid" is not token or anonymousId`) {
		t.Fatalf("New with an unknown DocumentAccess: %v", err)
	}
}

// TestPreflightAllowsTheTokenHeader: a page on an allowed origin may send
// X-Prechat-Token, and the browser may cache that answer.
func TestPreflightAllowsTheTokenHeader(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{AllowedOrigins: []string{"https://shop.example"}})
	r := s.do("OPTIONS", "/v1/prechat/visitor?wait=10", "", map[string]string{
		"Origin": "https://shop.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-prechat-token",
	})
	allowed := strings.Split(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), ", ")
	if r.status != http.StatusNoContent || !slices.Contains(allowed, "x-prechat-token") || r.header.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
}
