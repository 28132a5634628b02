package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/prechat/prechat/api"
)

// FuzzIngest posts arbitrary bodies to the ingest of a real stack (kfake,
// no consumer): it never fails with a 5xx or a non-JSON answer, accepted
// bodies answer {"success":true}, and every rejection names its reason.
// Seeds: f.Add below and testdata/fuzz/FuzzIngest.
func FuzzIngest(f *testing.F) {
	// The fuzzer posts from one address far faster than a client may:
	// without the per-client ingest rate every body reaches the parser.
	s := newStack(f, stackOptions{noConsumer: true, api: api.Config{IngestRateLimit: -1}})
	for _, seed := range []struct {
		path, body string
	}{
		{"/v1/t", `{"writeKey":"test-write-key","event":"Clicked","anonymousId":"a","properties":{"x":1}}`},
		{"/v1/i", `{"writeKey":"test-write-key","userId":"u","traits":{"email":"e@x"},"timestamp":"2026-11-30T05:00:00Z","sentAt":"2026-11-30T05:00:01Z"}`},
		{"/v1/b", `{"writeKey":"test-write-key","batch":[{"type":"group","groupId":"g","anonymousId":"a"},{"type":"alias","userId":"u","previousId":"a"}]}`},
		{"/v1/g", `{"writeKey":"test-write-key","groupId":"g"}`},
		{"/v1/p", `{"writeKey":"nope","anonymousId":"a"}`},
		{"/v1/b", `{"batch":"x"}`},
		{"/v1/t", `{"writeKey":"test-write-key","event":"e","anonymousId":"a","sentAt":"not a time"}`},
		{"/v1/s", `[`},
	} {
		f.Add(seed.path, []byte(seed.body))
	}
	paths := map[string]bool{}
	for _, p := range []string{"identify", "i", "track", "t", "page", "p", "screen", "s", "group", "g", "alias", "a", "batch", "b", "import"} {
		paths["/v1/"+p] = true
	}
	client := &http.Client{}
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		if !paths[path] {
			path = "/v1/t"
		}
		res, err := client.Post(s.url+path, "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		answer, _ := io.ReadAll(res.Body)
		switch res.StatusCode {
		case http.StatusOK:
			if string(answer) != "{\"success\":true}\n" {
				t.Fatalf("200 with %q", answer)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			var e struct{ Error, Message string }
			if err := json.Unmarshal(answer, &e); err != nil || e.Error == "" || e.Message == "" {
				t.Fatalf("%d without a JSON reason: %q", res.StatusCode, answer)
			}
		default:
			t.Fatalf("status %d for %s %q: %s", res.StatusCode, path, body, answer)
		}
	})
}
