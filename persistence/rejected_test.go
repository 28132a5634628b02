package persistence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// TestApplyBatchRejectsWhatStorageRefuses builds events that Decode would
// refuse, bypassing it: Postgres or the document encoder refuses each, and
// ApplyBatch and TryBatch say so with ErrRejected (retrying cannot help),
// writing nothing. This is the second line behind Decode, and it shows that
// Decode's limits are real: each value here would stall its partition.
func TestApplyBatchRejectsWhatStorageRefuses(t *testing.T) {
	tb := setup(t)
	conn, err := pgx.Connect(context.Background(), tb.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// A check constraint stands for any refusal Decode cannot foresee.
	if _, err := conn.Exec(context.Background(), `ALTER TABLE conversations ADD CONSTRAINT test_no_poison CHECK (properties->>'subject' IS DISTINCT FROM 'poison')`); err != nil {
		t.Fatal(err)
	}
	conversation := func(props string, at time.Time) mapping.Event {
		e := mapping.Event{Type: mapping.TypeTrack, Event: mapping.ConversationStarted, MessageID: "c", AnonymousID: "a", Timestamp: at}
		if props != "" {
			if err := json.Unmarshal([]byte(props), &e.Properties); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	identify := func(traits string) mapping.Event {
		e := mapping.Event{Type: mapping.TypeIdentify, MessageID: "i", AnonymousID: "a", UserID: "u", Timestamp: tb.now}
		if err := json.Unmarshal([]byte(traits), &e.Traits); err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		name   string
		events []mapping.Event
		want   string
	}{
		{"a number numeric cannot hold", []mapping.Event{identify(`{"score":1e200000}`)}, "value overflows numeric format (SQLSTATE 22003)"},
		{"a number with too many decimals", []mapping.Event{identify(`{"score":-1e-16384}`)}, "SQLSTATE 22003"},
		{"a lone surrogate in a trait", []mapping.Event{identify(`{"name":"\ud800"}`)}, "invalid input syntax for type json (SQLSTATE 22P02)"},
		{"a lone surrogate in a property", []mapping.Event{conversation(`{"subject":"\udc00"}`, tb.now)}, "SQLSTATE 22P02"},
		{"a NUL in a trait", []mapping.Event{identify(`{"name":"\u0000"}`)}, "unsupported Unicode escape sequence (SQLSTATE 22P05)"},
		{"a check violation", []mapping.Event{conversation(`{"subject":"poison"}`, tb.now)}, "violates check constraint \"test_no_poison\" (SQLSTATE 23514)"},
	}
	before := tb.fingerprint(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mapping.NewBatch()
			for i := range tt.events {
				b.Add(&tt.events[i], tb.now)
			}
			b.Positions = []mapping.Position{{Group: "g", Topic: "t", Partition: 0, NextOffset: 1}}
			_, err := tb.store.ApplyBatch(context.Background(), b)
			if !errors.Is(err, persistence.ErrRejected) || !errors.Is(err, mapping.ErrRejected) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ApplyBatch: %v; want ErrRejected with %q", err, tt.want)
			}
			if err := tb.store.TryBatch(context.Background(), b, tb.mat); !errors.Is(err, persistence.ErrRejected) {
				t.Fatalf("TryBatch: %v; want ErrRejected", err)
			}
		})
	}
	if after := tb.fingerprint(t); !reflect.DeepEqual(after, before) {
		t.Fatalf("refused batches changed the state:\n got %v\nwant %v", after, before)
	}
	if offs, err := tb.store.OffsetsGet(context.Background(), "g", "t"); err != nil || len(offs) != 0 {
		t.Fatalf("refused batches stored offsets %v (%v)", offs, err)
	}
}

// TestApplyBatchDoesNotRejectTransientFailures: a cancelled context and a
// missing table are not the batch's fault; they are retried, never
// dead-lettered.
func TestApplyBatchDoesNotRejectTransientFailures(t *testing.T) {
	tb := setup(t)
	events := tb.decodeAll(t, [][]byte{[]byte(`{"type":"identify","messageId":"i","userId":"u","traits":{"email":"x@example.com"}}`)})
	b := mapping.NewBatch()
	b.Add(&events[0], tb.now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tb.store.ApplyBatch(ctx, b); err == nil || errors.Is(err, persistence.ErrRejected) {
		t.Fatalf("cancelled: %v; want an error that is not ErrRejected", err)
	}
	conn, err := pgx.Connect(context.Background(), tb.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `DROP TABLE applied_messages`); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.store.ApplyBatch(context.Background(), b); err == nil || errors.Is(err, persistence.ErrRejected) {
		t.Fatalf("missing table: %v; want an error that is not ErrRejected", err)
	}
}

// TestTryBatchChangesNothing: a trial runs the whole transaction, documents
// included, and leaves no trace; the same batch then applies.
func TestTryBatchChangesNothing(t *testing.T) {
	tb := setup(t)
	at := tb.now.Format(time.RFC3339Nano)
	events := tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"a1","traits":{"email":"ada@example.com"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` + at + `"}`),
	})
	b := mapping.NewBatch()
	for i := range events {
		b.Add(&events[i], tb.now)
	}
	b.Positions = []mapping.Position{{Group: "g", Topic: "t", Partition: 0, NextOffset: 2}}
	b.DeadLetters = []mapping.DeadLetter{{Topic: "t", Partition: 0, Offset: 1, Raw: []byte("x"), Reason: "invalid event: test", Time: tb.now}}
	before := tb.fingerprint(t)
	if err := tb.store.TryBatch(context.Background(), b, tb.mat); err != nil {
		t.Fatal(err)
	}
	if after := tb.fingerprint(t); !reflect.DeepEqual(after, before) {
		t.Fatalf("TryBatch changed the state:\n got %v\nwant %v", after, before)
	}
	if offs, _ := tb.store.OffsetsGet(context.Background(), "g", "t"); len(offs) != 0 {
		t.Fatalf("TryBatch stored offsets %v", offs)
	}
	if _, err := tb.store.ApplyBatch(context.Background(), b); err != nil {
		t.Fatalf("ApplyBatch after the trial: %v", err)
	}
	if res := persistencetest.Refresh(t, tb.store, tb.mat); res.Documents != 1 {
		t.Fatalf("the refresh after the batch wrote %d documents, want 1", res.Documents)
	}
	tb.storedDocument(t, "a1")
}

// TestADocumentThatCannotBeEncodedDoesNotStallTheQueue: a conversation
// started in the last minute of the year 9999 (out of the admission
// window's reach, but a batch can carry one) expires in a year JSON cannot
// hold. The batch applies; the refresh reports that visitor, writes the
// other visitor's document and empties the queue instead of failing on it
// for ever.
func TestADocumentThatCannotBeEncodedDoesNotStallTheQueue(t *testing.T) {
	tb := setup(t)
	b := mapping.NewBatch()
	for _, e := range []mapping.Event{
		{Type: mapping.TypeTrack, Event: mapping.ConversationStarted, MessageID: "c9999", AnonymousID: "late", Timestamp: time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC)},
		{Type: mapping.TypeTrack, Event: mapping.ConversationStarted, MessageID: "c-now", AnonymousID: "now", Timestamp: tb.now},
	} {
		b.Add(&e, tb.now)
	}
	if _, err := tb.store.ApplyBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	res := persistencetest.Refresh(t, tb.store, tb.mat)
	if !reflect.DeepEqual(res.Unwritable, []string{"late"}) || res.Documents != 1 {
		t.Fatalf("refresh: %d documents written, unwritable %v; want 1 and [late]", res.Documents, res.Unwritable)
	}
	tb.storedDocument(t, "now")
	if _, _, err := tb.store.DocumentGet(context.Background(), "late"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the unwritable visitor's document: %v, want ErrNotFound", err)
	}
}

// TestADocumentPostgresRefusesDoesNotStallTheQueue: a document Postgres
// refuses (a check constraint stands for any refusal) is left as it was
// and reported, in the same refresh that writes the other documents, and
// the queue empties: the refresh neither fails for ever nor stalls the
// documents behind it.
func TestADocumentPostgresRefusesDoesNotStallTheQueue(t *testing.T) {
	tb := setup(t)
	conn, err := pgx.Connect(context.Background(), tb.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `ALTER TABLE prechat_documents ADD CONSTRAINT test_no_poison CHECK (document::text NOT LIKE '%Poisoned subject%')`); err != nil {
		t.Fatal(err)
	}
	b := mapping.NewBatch()
	for i, subject := range []string{"fine", "Poisoned subject", "also fine"} {
		e := mapping.Event{Type: mapping.TypeTrack, Event: mapping.ConversationStarted, MessageID: fmt.Sprint("c", i), AnonymousID: fmt.Sprint("v", i), Timestamp: tb.now,
			Properties: mapping.Object{"subject": json.RawMessage(`"` + subject + `"`)}}
		b.Add(&e, tb.now)
	}
	if _, err := tb.store.ApplyBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	res := persistencetest.Refresh(t, tb.store, tb.mat)
	if !reflect.DeepEqual(res.Unwritable, []string{"v1"}) || res.Documents != 2 {
		t.Fatalf("refresh: %d documents written, unwritable %v; want 2 and [v1]", res.Documents, res.Unwritable)
	}
	tb.storedDocument(t, "v0")
	tb.storedDocument(t, "v2")
	if n, err := tb.store.RefreshBacklog(context.Background()); err != nil || n != 0 {
		t.Fatalf("refresh backlog %d, %v; want 0", n, err)
	}
}
