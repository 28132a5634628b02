package persistence_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// FuzzApply drives the whole decode → store path: every input that Decode
// accepts is admitted as the pipeline admits it (mappingtest.Policy, at a
// fixed record time: a record time a producer sets is the pipeline's second
// line's, see TestHostileInputNeverStallsAPartition) and applied through the
// real store into Postgres, with a conversation start of its visitor
// (linked to its user with the same proof, so that its group counts too) at
// the event's time and carrying its properties, under settings that render
// all three products. Each input runs in a transaction that is rolled back
// (TryBatch), so inputs do not depend on each other. Any error fails: an
// event that Decode accepts and storage or rendering refuses would cost a
// split of its batch (or, before the second line, stall its partition).
// Seeds: the hostile payloads below; those Decode rejects stay as seeds for
// the mutations near them.
func FuzzApply(f *testing.F) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, s := range []string{
		`{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a","properties":{"subject":"Shoes"},"timestamp":"9999-12-31T23:59:00Z"}`,
		`{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a","properties":{"subject":"Shoes","caseStatus":1e399},"timestamp":"9998-12-31T23:59:59.999999Z"}`,
		`{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a","timestamp":"0001-01-01T00:00:00.000001Z"}`,
		`{"type":"identify","messageId":"m","anonymousId":"a","userId":"u","traits":{"email":1e200000,"firstName":-1e999999,"lastName":0.0e-99999}}`,
		`{"type":"identify","messageId":"m","anonymousId":"a","userId":"u","traits":{"email":9.99e399,"firstName":-1e-400,"lastName":0e999999}}`,
		`{"type":"identify","messageId":"m","userId":"u","traits":{"email":"\ud800","firstName":"\udbff\udfff","lastName":"\\ud800"}}`,
		`{"type":"group","messageId":"m","anonymousId":"a","groupId":"g","traits":{"website":{"a":` + deep(62) + `},"revenue":` + deep(65) + `}}`,
		`{"type":"group","messageId":"m","userId":"u","groupId":"g","traits":{"website":[` + strings.Repeat("0,", 16000) + `0]}}`,
		`{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a","properties":{"subject":"` + strings.Repeat("é", 16000) + `"}}`,
		`{"type":"alias","messageId":"m","userId":"u","previousId":"a","context":{"ip":"\ud83d\ude80","n":1e131072}}`,
		`{"type":"page","messageId":"m","anonymousId":"a","receivedAt":"2024-01-01T00:00:00Z","sentAt":"9998-01-01T00:00:00Z","originalTimestamp":"0002-01-01T00:00:00Z"}`,
		`{"type":"identify","messageId":"m","anonymousId":"a","traits":{"firstName":"Ada","lastName":1e21},"sentAt":"2024-01-01T00:00:00Z","originalTimestamp":"2023-12-31T00:00:00Z","receivedAt":"2024-01-01T00:00:01Z"}`,
		`{"type":"group","messageId":"m","anonymousId":"a","userId":"u","groupId":"g","traits":{"website":"\ud83d\ude80","revenue":-9.99e399},"context":` + mappingtest.Proof("u") + `}`,
		`{"type":"identify","messageId":"m","anonymousId":"a","userId":"u","traits":{"email":"ada@example.com","firstName":"\ud800"},"context":` + mappingtest.Proof("u") + `}`,
	} {
		f.Add([]byte(s))
	}
	store, _ := persistencetest.NewStore(f, nil)
	mat := &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute}
	policy := mappingtest.Policy()
	recordTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := mapping.Decode(raw, "fallback")
		if err != nil {
			return
		}
		policy.Admit(&e, recordTime)
		visitor := e.AnonymousID
		if visitor == "" {
			visitor = "fuzz-visitor"
		}
		start := mapping.Event{Type: mapping.TypeTrack, Event: mapping.ConversationStarted, MessageID: "fuzz-start",
			AnonymousID: visitor, UserID: e.UserID, Properties: e.Properties, Timestamp: e.Time(recordTime), Prechat: e.Prechat}
		policy.Admit(&start, recordTime)
		b := mapping.NewBatch()
		b.Add(&e, recordTime)
		b.Add(&start, recordTime)
		b.Positions = []mapping.Position{{Group: "fuzz", Topic: "fuzz", Partition: 0, NextOffset: 2}}
		if err := store.TryBatch(context.Background(), b, mat); err != nil {
			t.Fatalf("the store refused an event that Decode accepted: %v\nevent: %.2000s", err, raw)
		}
	})
}
