package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// TestAttackerCannotReadOrRewriteAVictim sends, straight into Kafka, what an
// attacker with the public write key can send, after the victim's own
// verified traffic, and checks that nothing of the victim reaches the
// attacker's documents and nothing of the victim's changes: claiming the
// victim's userId (identify, alias, any event with both ids, a run of
// guessed userIds), writing the victim's traits and company dated 9999,
// forged, other-user and expired-looking proofs. The proofs are counted.
func TestAttackerCannotReadOrRewriteAVictim(t *testing.T) {
	tb := setup(t, 3)
	reg := prometheus.NewRegistry()
	tb.registerer = reg
	at := tb.now.Format(time.RFC3339Nano)
	proof := mappingtest.Proof("victim-42")
	msgs := []string{
		// The victim, verified, on their own browser.
		`{"type":"identify","messageId":"v1","anonymousId":"victim-browser","userId":"victim-42","traits":{"email":"victim@example.com","firstName":"Vera","lastName":"Victim"},"context":` + proof + `,"timestamp":"` + at + `"}`,
		`{"type":"group","messageId":"v2","anonymousId":"victim-browser","userId":"victim-42","groupId":"acme","traits":{"website":"acme.test","revenue":100},"context":` + proof + `,"timestamp":"` + at + `"}`,
		`{"type":"track","messageId":"v3","anonymousId":"victim-browser","event":"Live Chat Conversation Started","properties":{"subject":"mine"},"timestamp":"` + at + `"}`,
		// The victim's phone, verified by an identity token (as minted for
		// Messaging User Verification).
		`{"type":"identify","messageId":"v4","anonymousId":"victim-phone","userId":"victim-42","context":{"prechat":{"identityToken":"` + mappingtest.IdentityToken("victim-42", tb.now.Add(time.Hour)) + `"}},"timestamp":"` + at + `"}`,
		`{"type":"track","messageId":"v5","anonymousId":"victim-phone","event":"Live Chat Conversation Started","properties":{"subject":"mine too"},"timestamp":"` + at + `"}`,
		// The attacker claims victim-42 in every way there is.
		`{"type":"identify","messageId":"x1","anonymousId":"attacker","userId":"victim-42","timestamp":"` + at + `"}`,
		`{"type":"alias","messageId":"x2","anonymousId":"attacker","previousId":"attacker-2","userId":"victim-42","timestamp":"` + at + `"}`,
		`{"type":"track","event":"Order Completed","messageId":"x3","anonymousId":"attacker-3","userId":"victim-42","timestamp":"` + at + `"}`,
		// Proofs that must not verify: another user's, forged, a token.
		`{"type":"identify","messageId":"x4","anonymousId":"attacker-4","userId":"victim-42","context":` + mappingtest.Proof("attacker-user") + `,"timestamp":"` + at + `"}`,
		`{"type":"identify","messageId":"x5","anonymousId":"attacker-5","userId":"victim-42","context":{"prechat":{"userHash":"` + strings.Repeat("ab", 32) + `"}},"timestamp":"` + at + `"}`,
		`{"type":"identify","messageId":"x6","anonymousId":"attacker-6","userId":"victim-42","context":{"prechat":{"identityToken":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ2aWN0aW0tNDIifQ."}},"timestamp":"` + at + `"}`,
		// Rewrites of the victim's and the company's data, dated 9999.
		`{"type":"identify","messageId":"x7","userId":"victim-42","traits":{"email":"attacker@example.com"},"timestamp":"9999-12-31T00:00:00Z"}`,
		`{"type":"identify","messageId":"x8","anonymousId":"attacker","userId":"victim-42","traits":{"email":"attacker@example.com"},"timestamp":"9999-12-31T00:00:00Z"}`,
		`{"type":"group","messageId":"x9","anonymousId":"attacker","userId":"victim-42","groupId":"acme","traits":{"website":"evil.test"},"timestamp":"9999-12-31T00:00:00Z"}`,
		`{"type":"group","messageId":"x10","userId":"victim-42","groupId":"acme","traits":{"revenue":666},"timestamp":"9999-12-31T00:00:00Z"}`,
	}
	// A batch of guessed userIds from one attacker browser.
	for i := range 50 {
		msgs = append(msgs, fmt.Sprintf(`{"type":"identify","messageId":"guess-%d","anonymousId":"attacker-guess","userId":"victim-%d","timestamp":"%s"}`, i, i, at))
	}
	for _, a := range []string{"attacker", "attacker-2", "attacker-3", "attacker-4", "attacker-5", "attacker-6", "attacker-guess"} {
		msgs = append(msgs, `{"type":"track","messageId":"conv-`+a+`","anonymousId":"`+a+`","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"`+at+`"}`)
	}
	// A conversation start dated 9999 must not outlive PRECHAT_TTL.
	msgs = append(msgs, `{"type":"track","messageId":"conv-forever","anonymousId":"forever","event":"Live Chat Conversation Started","timestamp":"9999-12-31T00:00:00Z"}`)
	raws := make([][]byte, len(msgs))
	for i, m := range msgs {
		raws[i] = []byte(m)
	}
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	tb.start(t, 500)
	tb.waitConsumed(t, int64(len(raws)))

	ctx := context.Background()
	doc := func(anon string) (mapping.Document, string) {
		t.Helper()
		raw, _, err := tb.store.DocumentGet(ctx, anon)
		if err != nil {
			t.Fatalf("document of %s: %v", anon, err)
		}
		var d mapping.Document
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		return d, string(raw)
	}
	for _, a := range []string{"attacker", "attacker-2", "attacker-3", "attacker-4", "attacker-5", "attacker-6", "attacker-guess"} {
		d, raw := doc(a)
		for _, secret := range []string{"victim@example.com", "Vera", "Victim", "acme.test", "100"} {
			if strings.Contains(raw, secret) {
				t.Errorf("%s's document shows the victim's %q:\n%s", a, secret, raw)
			}
		}
		if d.UserVerified {
			t.Errorf("%s's link to %s counts as verified", a, d.UserID)
		}
	}
	if phone, raw := doc("victim-phone"); !phone.UserVerified || phone.VisitorName != "Vera Victim" || !strings.Contains(raw, "acme.test") {
		t.Errorf("the victim's phone, verified by a token, lacks the victim's traits or company: %s", raw)
	}
	victim, raw := doc("victim-browser")
	want := map[string]string{"User Email": `"victim@example.com"`, "First Name": `"Vera"`, "Account Website": `"acme.test"`, "Account Revenue": `100`}
	for _, det := range victim.Details {
		if w, ok := want[det.Label]; ok && string(det.Value) != w {
			t.Errorf("the victim's %s is %s, want %s:\n%s", det.Label, det.Value, w, raw)
		}
	}
	if !victim.UserVerified || victim.VisitorName != "Vera Victim" {
		t.Errorf("the victim's own document lost its verified user: %s", raw)
	}
	forever, _ := doc("forever")
	if limit := time.Now().Add(mapping.DefaultTimeFuture + 30*time.Minute); forever.ExpiresAt.After(limit) {
		t.Errorf("a conversation dated 9999 expires at %v, after %v", forever.ExpiresAt, limit)
	}
	// The attacker's own browser shows what it sent itself.
	if d, _ := doc("attacker"); d.UserID != "victim-42" {
		t.Errorf("the attacker's own claim is not shown to the attacker: userId %q", d.UserID)
	}

	for result, n := range map[string]float64{"valid": 3, "invalid": 3} {
		if got := counter(t, reg, "prechat_identity_proofs_total", map[string]string{"result": result}); got != n {
			t.Errorf("prechat_identity_proofs_total{result=%q} = %v, want %v", result, got, n)
		}
	}
	if got := counter(t, reg, "prechat_event_time_clamped_total", nil); got != 5 {
		t.Errorf("prechat_event_time_clamped_total = %v, want 5", got)
	}
	if _, _, err := tb.store.DocumentGet(ctx, "victim-42"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("a userId got a document: %v", err)
	}
}
