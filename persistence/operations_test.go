package persistence_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

func TestForgetDeletesEveryLinkedIDAndSuppressesThem(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	at := tb.now.Format(time.RFC3339Nano)
	proof := mappingtest.Proof("u1")
	b := mapping.NewBatch()
	for _, e := range tb.decodeAll(t, [][]byte{
		// u1 used two browsers (a1, a2), verified; a3 is someone else in
		// the same group; a4 is an attacker who claimed u1 without a proof.
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com"},"context":` + proof + `,"timestamp":"` + at + `"}`),
		[]byte(`{"type":"identify","messageId":"i2","anonymousId":"a2","userId":"u1","traits":{"firstName":"Ada"},"context":` + proof + `,"timestamp":"` + at + `"}`),
		[]byte(`{"type":"identify","messageId":"i3","anonymousId":"a2","traits":{"lastName":"Lovelace"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"group","messageId":"g1","userId":"u1","groupId":"acme","traits":{"website":"acme.test"},"context":` + proof + `,"timestamp":"` + at + `"}`),
		[]byte(`{"type":"group","messageId":"g3","anonymousId":"a3","groupId":"acme","traits":{"revenue":5},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c3","anonymousId":"a3","event":"Live Chat Conversation Started","properties":{"subject":"y"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"identify","messageId":"i4","anonymousId":"a4","userId":"u1","traits":{"email":"attacker@example.com"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c4","anonymousId":"a4","event":"Live Chat Conversation Started","properties":{"subject":"z"},"timestamp":"` + at + `"}`),
	}) {
		b.Add(&e, tb.now)
	}
	b.DeadLetters = []mapping.DeadLetter{
		{Topic: "t", Partition: 0, Offset: 1, Key: []byte("a1"), Raw: []byte(`{"type":"identify","anonymousId":"a1","traits":[1]}`), Reason: "traits is not a JSON object", Time: tb.now},
		{Topic: "t", Partition: 0, Offset: 2, Raw: []byte(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"},"timestamp":"x"}`), Reason: "bad timestamp", Time: tb.now},
		{Topic: "t", Partition: 0, Offset: 3, Key: []byte("a3"), Raw: []byte(`{"type":"identify","anonymousId":"a3","traits":[1]}`), Reason: "someone else's", Time: tb.now},
	}
	if _, err := tb.store.ApplyBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, tb.store, tb.mat)
	rep, err := tb.store.Forget(ctx, mapping.KindAnonymous, "a2")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.AnonymousIDs, []string{"a1", "a2"}) || !reflect.DeepEqual(rep.UserIDs, []string{"u1"}) {
		t.Fatalf("forgot %v %v, want a1 a2 and u1 (verified links only, never the claimant a4)", rep.AnonymousIDs, rep.UserIDs)
	}
	// traits: u1's (what a1 and a2 sent verified is u1's) and a2's own
	// (its unverified lastName); links: a1, a2 and a4's claim naming u1;
	// memberships: u1's; refresh queue: the recheck of a1's first
	// document, not yet due.
	want := map[string]int64{"traits": 2, "identity_links": 3, "group_memberships": 1, "conversations": 1, "prechat_documents": 1, "applied_messages": 6, "dead_letters": 2, "document_refreshes": 1}
	if !reflect.DeepEqual(rep.Deleted, want) {
		t.Fatalf("deleted %v, want %v", rep.Deleted, want)
	}
	if _, _, err := tb.store.DocumentGet(ctx, "a1"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("a1's document survived: %v", err)
	}
	for _, other := range []string{"a3", "a4"} {
		if _, _, err := tb.store.DocumentGet(ctx, other); err != nil {
			t.Fatalf("%s's document was deleted: %v", other, err)
		}
	}
	letters, err := tb.store.DeadLettersList(ctx, persistence.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range letters {
		redacted := len(d.Raw) == 0 && d.Key == nil && strings.Contains(d.Reason, "redacted")
		if redacted != (d.Offset != 3) {
			t.Errorf("dead letter %d: raw %q key %q reason %q (only a3's should be kept)", d.Offset, d.Raw, d.Key, d.Reason)
		}
	}
	sup, err := tb.store.Suppressed(ctx, []string{"a1", "a2", "u1", "a3", "a4"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sup, map[string]bool{"a1": true, "a2": true, "u1": true}) {
		t.Fatalf("suppressed %v", sup)
	}
	lifted, err := tb.store.Lift(ctx, "a2")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lifted, []string{"a1", "a2", "u1"}) {
		t.Fatalf("lifted %v", lifted)
	}
	if sup, _ := tb.store.Suppressed(ctx, []string{"a1", "a2", "u1"}); len(sup) != 0 {
		t.Fatalf("still suppressed after lift: %v", sup)
	}
}

// TestForgetAnAnonymousOnlyVisitor: a visitor that never linked to a user
// loses its conversation and document too (a nil users slice once made
// those deletes match nothing).
func TestForgetAnAnonymousOnlyVisitor(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	at := tb.now.Format(time.RFC3339Nano)
	tb.apply(t, tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"solo","traits":{"email":"solo@example.com"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"group","messageId":"g1","anonymousId":"solo","groupId":"acme","traits":{"website":"solo.test"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"solo","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` + at + `"}`),
	}))
	rep, err := tb.store.Forget(ctx, mapping.KindAnonymous, "solo")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"traits": 2, "identity_links": 0, "group_memberships": 1, "conversations": 1, "prechat_documents": 1, "applied_messages": 3, "dead_letters": 0, "document_refreshes": 1}
	if !reflect.DeepEqual(rep.Deleted, want) {
		t.Fatalf("deleted %v, want %v", rep.Deleted, want)
	}
	if _, _, err := tb.store.DocumentGet(ctx, "solo"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the document survived: %v", err)
	}
}

func TestExpireDeletesWhatOutlivedItsWindow(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	old := tb.now.Add(-25 * time.Minute).Format(time.RFC3339Nano)
	fresh := tb.now.Format(time.RFC3339Nano)
	tb.apply(t, tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"track","messageId":"c-old","anonymousId":"old","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` + old + `"}`),
		[]byte(`{"type":"track","messageId":"c-new","anonymousId":"new","event":"Live Chat Conversation Started","properties":{"subject":"y"},"timestamp":"` + fresh + `"}`),
	}))
	if rep, err := tb.store.Expire(ctx, 30*time.Minute, time.Hour); err != nil || rep != (persistence.ExpireReport{}) {
		t.Fatalf("nothing is expired yet: %+v %v", rep, err)
	}
	tb.now = tb.now.Add(10 * time.Minute) // "old" is now 35 minutes old
	rep, err := tb.store.Expire(ctx, 30*time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep != (persistence.ExpireReport{Documents: 1, Conversations: 1}) {
		t.Fatalf("expired %+v, want the old document and conversation", rep)
	}
	if _, _, err := tb.store.DocumentGet(ctx, "new"); err != nil {
		t.Fatalf("the fresh document went too: %v", err)
	}
	tb.now = tb.now.Add(2 * time.Hour)
	rep, err = tb.store.Expire(ctx, 30*time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AppliedMessages != 2 || rep.Documents != 1 {
		t.Fatalf("second pass expired %+v, want the new document and both applied records", rep)
	}
}
