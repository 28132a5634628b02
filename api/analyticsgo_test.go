package api_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
)

// callback records analytics-go's delivery results.
type callback struct {
	mu       sync.Mutex
	ok       int
	failures []error
}

func (c *callback) Success(analytics.Message) { c.mu.Lock(); c.ok++; c.mu.Unlock() }
func (c *callback) Failure(_ analytics.Message, err error) {
	c.mu.Lock()
	c.failures = append(c.failures, err)
	c.mu.Unlock()
}

// TestAnalyticsGoClientDrivesTheWholePath sends the visitor's identify,
// group and conversation start with Segment's own Go library to the ingest;
// the pipeline applies them and a read-your-writes fetch returns the
// document the destination would have built.
func TestAnalyticsGoClientDrivesTheWholePath(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	cb := &callback{}
	client, err := analytics.NewWithConfig(testWriteKey, analytics.Config{
		Endpoint:  s.url,
		Interval:  50 * time.Millisecond,
		BatchSize: 10,
		Callback:  cb,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	msgs := []analytics.Message{
		analytics.Identify{MessageId: "go-identify", AnonymousId: "go-visitor", UserId: "go-user", Timestamp: now,
			Traits: analytics.NewTraits().SetEmail("grace@example.com").SetFirstName("Grace").SetLastName("Hopper").Set("shoeSize", 9)},
		analytics.Group{MessageId: "go-group", AnonymousId: "go-visitor", UserId: "go-user", GroupId: "navy", Timestamp: now,
			Traits: analytics.NewTraits().Set("website", "navy.test").Set("revenue", 42)},
		// The site's server made the conversation secret and sends its hash;
		// the page presents the secret (prechat.start({token})).
		analytics.Track{MessageId: "go-start", AnonymousId: "go-visitor", UserId: "go-user", Event: "Live Chat Conversation Started", Timestamp: now,
			Properties: analytics.NewProperties().Set("caseStatus", "Escalated").Set("subject", "COBOL"),
			Context:    &analytics.Context{Extra: map[string]any{"prechat": map[string]any{"tokenHash": tokenHash(secretOf("go-visitor"))}}}},
	}
	for _, m := range msgs {
		if err := client.Enqueue(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if cb.ok != 3 || len(cb.failures) != 0 {
		t.Fatalf("analytics-go delivered %d, failures %v", cb.ok, cb.failures)
	}

	r := s.get("go-visitor", "?wait=20&after=go-identify,go-group,go-start")
	if r.status != http.StatusOK {
		t.Fatalf("document: %d %s", r.status, r.body)
	}
	doc := r.json(t)
	if doc["complete"] != true || doc["visitorName"] != "Grace Hopper" || doc["userId"] != "go-user" || doc["groupId"] != "navy" {
		t.Fatalf("unexpected document: %s", r.body)
	}
	var got []string
	for _, d := range doc["details"].([]any) {
		d := d.(map[string]any)
		got = append(got, d["entity"].(string)+":"+d["label"].(string)+"="+jsonString(d["value"]))
	}
	want := []string{
		`Contact:User Email="grace@example.com"`, `Contact:First Name="Grace"`, `Contact:Last Name="Hopper"`,
		`Case:Case Status="Escalated"`, `Case:Subject="COBOL"`,
		`Account:Account Website="navy.test"`, `Account:Account Revenue=42`,
	}
	if len(got) != len(want) {
		t.Fatalf("details %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("details %v, want %v", got, want)
		}
	}
}
