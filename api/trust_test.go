package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
)

// conversationStart is the track a page's snippet sends, with the hash of
// the visitor's conversation secret (secretOf).
func conversationStart(id, anon string, at time.Time) analytics.Track {
	return analytics.Track{MessageId: id, AnonymousId: anon, Event: mapping.ConversationStarted, Timestamp: at,
		Context: &analytics.Context{Extra: map[string]any{"prechat": map[string]any{"tokenHash": tokenHash(secretOf(anon))}}}}
}

// goClient is Segment's Go library pointed at the stack with writeKey.
func goClient(t *testing.T, s *stack, writeKey string) (analytics.Client, *callback) {
	t.Helper()
	cb := &callback{}
	c, err := analytics.NewWithConfig(writeKey, analytics.Config{Endpoint: s.url, Interval: 20 * time.Millisecond, BatchSize: 20, Callback: cb})
	if err != nil {
		t.Fatal(err)
	}
	return c, cb
}

func send(t *testing.T, c analytics.Client, cb *callback, msgs ...analytics.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := c.Enqueue(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if cb.ok != len(msgs) || len(cb.failures) != 0 {
		t.Fatalf("analytics-go delivered %d of %d, failures %v", cb.ok, len(msgs), cb.failures)
	}
}

// serverIdentifiesGrace is the site's server, with its server write key,
// identifying the user grace (email, first and last name) and her company
// navy (website, revenue), as analytics-go sends them.
func serverIdentifiesGrace(t *testing.T, s *stack, now time.Time) {
	t.Helper()
	server, cb := goClient(t, s, testServerKey)
	send(t, server, cb,
		analytics.Identify{MessageId: "srv-identify", UserId: "grace", Timestamp: now,
			Traits: analytics.NewTraits().SetEmail("grace@example.com").SetFirstName("Grace").SetLastName("Hopper")},
		analytics.Group{MessageId: "srv-group", UserId: "grace", GroupId: "navy", Timestamp: now,
			Traits: analytics.NewTraits().Set("website", "navy.test").Set("revenue", 42)},
	)
}

// TestVerifiedIdentityThroughTheIngest drives the trust model through the
// real ingest with analytics-go: the site's server, with a server write
// key, identifies a user and their company; a visitor that claims the user
// from the public write key sees none of it, one whose page carries the
// user's userHash sees all of it, and the public key cannot rewrite the
// user or vouch for itself.
func TestVerifiedIdentityThroughTheIngest(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	now := time.Now()

	serverIdentifiesGrace(t, s, now)
	// The public key: an attacker claims grace, rewrites her email (dated
	// 9999), forges a userHash, and a page of hers carries a real one.
	public, pcb := goClient(t, s, testWriteKey)
	send(t, public, pcb,
		analytics.Identify{MessageId: "pub-claim", AnonymousId: "attacker", UserId: "grace", Timestamp: now},
		analytics.Identify{MessageId: "pub-rewrite", UserId: "grace", Timestamp: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
			Traits: analytics.NewTraits().SetEmail("attacker@example.com")},
		analytics.Identify{MessageId: "pub-forged", AnonymousId: "forger", UserId: "grace", Timestamp: now,
			Context: &analytics.Context{Extra: map[string]any{"prechat": map[string]any{"userHash": mapping.UserHash([]byte("a guessed secret, long enough 0123456789"), "grace")}}}},
		analytics.Identify{MessageId: "pub-verified", AnonymousId: "grace-laptop", UserId: "grace", Timestamp: now,
			Context: &analytics.Context{Extra: map[string]any{"prechat": map[string]any{"userHash": mapping.UserHash([]byte(mappingtest.IdentitySecret), "grace")}}}},
		// Identity tokens, as minted for Messaging User Verification:
		// grace's phone has a valid one, an old page an expired one.
		analytics.Identify{MessageId: "pub-token", AnonymousId: "grace-phone", UserId: "grace", Timestamp: now,
			Context: &analytics.Context{Extra: map[string]any{"prechat": map[string]any{"identityToken": mappingtest.IdentityToken("grace", now.Add(time.Hour))}}}},
		analytics.Identify{MessageId: "pub-expired", AnonymousId: "stale-page", UserId: "grace", Timestamp: now,
			Context: &analytics.Context{Extra: map[string]any{"prechat": map[string]any{"identityToken": mappingtest.IdentityToken("grace", now.Add(-time.Hour))}}}},
		conversationStart("start-stale-page", "stale-page", now),
		conversationStart("start-phone", "grace-phone", now),
		conversationStart("start-attacker", "attacker", now),
		conversationStart("start-forger", "forger", now),
		conversationStart("start-grace", "grace-laptop", now),
	)

	get := func(anon, after string) map[string]any {
		t.Helper()
		r := s.get(anon, "?wait=20&after="+after)
		if r.status != http.StatusOK {
			t.Fatalf("document of %s: %d %s", anon, r.status, r.body)
		}
		return r.json(t)
	}
	for _, anon := range []string{"attacker", "forger", "stale-page"} {
		doc := get(anon, "start-"+anon+",srv-identify,srv-group,pub-rewrite")
		body := jsonString(doc)
		// The revenue as a detail's value: a bare "42" also matches a
		// createdAt at minute 42.
		for _, leak := range []string{"grace@example.com", "Grace", "Hopper", "navy.test", `"value":42`} {
			if strings.Contains(body, leak) {
				t.Errorf("%s's document shows %q: %s", anon, leak, body)
			}
		}
		if doc["userId"] != "grace" || doc["userVerified"] != nil {
			t.Errorf("%s: userId %v userVerified %v; want its own unverified claim", anon, doc["userId"], doc["userVerified"])
		}
	}
	for anon, after := range map[string]string{"grace-phone": "start-phone,pub-token", "grace-laptop": "start-grace,pub-verified"} {
		doc := get(anon, after+",srv-identify,srv-group,pub-rewrite")
		if doc["userVerified"] != true || doc["visitorName"] != "Grace Hopper" || doc["groupId"] != "navy" {
			t.Fatalf("%s: the verified visitor's document: %s", anon, jsonString(doc))
		}
	}
	doc := get("grace-laptop", "start-grace")
	got := map[string]string{}
	for _, d := range doc["details"].([]any) {
		d := d.(map[string]any)
		got[d["label"].(string)] = jsonString(d["value"])
		if d["entity"] != "Case" && d["verified"] != true {
			t.Errorf("detail %v is not marked verified", d)
		}
	}
	for label, want := range map[string]string{"User Email": `"grace@example.com"`, "Account Website": `"navy.test"`, "Account Revenue": "42"} {
		if got[label] != want {
			t.Errorf("%s = %s, want %s (details %v)", label, got[label], want, got)
		}
	}
}

// TestServerWriteKeyProof: the ingest adds the userHash to a server key's
// events, replacing whatever the sender put there, and leaves the public
// key's events as they came.
func TestServerWriteKeyProof(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{})
	want := mapping.UserHash([]byte(mappingtest.IdentitySecret), "u-1")
	for _, c := range []struct {
		key, body string
	}{
		{testServerKey, `{"userId":"u-1","messageId":"srv-1","traits":{}}`},
		{testServerKey, `{"userId":"u-1","messageId":"srv-2","context":{"prechat":{"userHash":"` + strings.Repeat("0", 64) + `"},"ip":"1.2.3.4"}}`},
		{testWriteKey, `{"userId":"u-1","messageId":"pub-1","context":{"prechat":{"userHash":"` + strings.Repeat("0", 64) + `"}}}`},
		{testWriteKey, `{"userId":"u-1","messageId":"pub-2"}`},
	} {
		r := s.do("POST", "/v1/identify", c.body, map[string]string{"Authorization": basicAuth(c.key), "Content-Type": "application/json"})
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", c.body, r.status, r.body)
		}
	}
	msgs := s.topicMessages()
	if len(msgs) != 4 {
		t.Fatalf("%d messages on the topic, want 4", len(msgs))
	}
	hashes := map[string]string{}
	for _, m := range msgs {
		e, err := mapping.Decode(m.Value, "")
		if err != nil {
			t.Fatal(err)
		}
		hashes[e.MessageID] = e.Prechat.UserHash
	}
	for id, h := range map[string]string{"srv-1": want, "srv-2": want, "pub-1": strings.Repeat("0", 64), "pub-2": ""} {
		if hashes[id] != h {
			t.Errorf("%s carries userHash %q, want %q", id, hashes[id], h)
		}
	}
}
