package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"
)

// TestNotFoundAnswersDoNotTellUnknownFromExpired: an unknown visitor and a
// visitor whose document expired get byte-identical answers, so the public
// port cannot be used to learn which ids exist.
func TestNotFoundAnswersDoNotTellUnknownFromExpired(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	old := time.Now().Add(-31 * time.Minute).UTC().Format(time.RFC3339Nano)
	fresh := time.Now().UTC().Format(time.RFC3339Nano)
	// The fresh conversation start follows the old one, so once it shows
	// the old one was applied (and left no document).
	s.produce(`{"type":"track","messageId":"old-c","anonymousId":"expired-visitor","event":"Live Chat Conversation Started","timestamp":"`+old+`"}`,
		`{"type":"track","messageId":"new-c","anonymousId":"marker","event":"Live Chat Conversation Started","timestamp":"`+fresh+`"}`)
	if r := s.do("GET", "/v1/prechat/marker?wait=20", "", nil); r.status != http.StatusOK {
		t.Fatalf("marker: %d", r.status)
	}
	if missing, err := s.store.AppliedMissing(context.Background(), []string{"old-c"}); err != nil || len(missing) != 0 {
		t.Fatalf("the expired conversation start was not applied: %v %v", missing, err)
	}
	unknown := s.do("GET", "/v1/prechat/never-seen", "", nil)
	expired := s.do("GET", "/v1/prechat/expired-visitor", "", nil)
	if unknown.status != http.StatusNotFound || expired.status != http.StatusNotFound {
		t.Fatalf("statuses %d and %d, want 404", unknown.status, expired.status)
	}
	if !bytes.Equal(unknown.body, expired.body) {
		t.Fatalf("bodies differ:\n%s\n%s", unknown.body, expired.body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Length", "Retry-After"} {
		if unknown.header.Get(h) != expired.header.Get(h) {
			t.Fatalf("header %s differs: %q vs %q", h, unknown.header.Get(h), expired.header.Get(h))
		}
	}
}
