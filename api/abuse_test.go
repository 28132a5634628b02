package api_test

import (
	"bytes"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/persistence"
)

// TestNotFoundAnswersDoNotTellUnknownFromExpired: an unknown visitor and a
// visitor whose document expired get byte-identical answers, so the public
// port cannot be used to learn which ids exist. The expired visitor's
// document was served (and cached) before the clock of the store and the
// API moved past its expiresAt.
func TestNotFoundAnswersDoNotTellUnknownFromExpired(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64 // how far the store's and the API's clock runs ahead
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	s := newStack(t, stackOptions{store: &persistence.Config{Now: now}, api: api.Config{Now: now}})
	s.startConversation("expired-visitor")
	if r := s.get("expired-visitor", ""); r.status != http.StatusOK {
		t.Fatalf("the document before it expired: %d %s", r.status, r.body)
	}
	ahead.Store(int64(31 * time.Minute)) // past the stack's 30-minute TTL

	unknown := s.get("never-seen", "")
	expired := s.get("expired-visitor", "")
	if unknown.status != http.StatusNotFound || expired.status != http.StatusNotFound {
		t.Fatalf("statuses %d and %d, want 404: %s", unknown.status, expired.status, expired.body)
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
