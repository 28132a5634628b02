package persistence_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence"
)

func TestForgetDeletesEveryLinkedIDAndSuppressesThem(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	at := tb.now.Format(time.RFC3339Nano)
	tb.apply(t, decodeAll(t, [][]byte{
		// u1 used two browsers (a1, a2); a3 is someone else in the same group.
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"identify","messageId":"i2","anonymousId":"a2","userId":"u1","traits":{"firstName":"Ada"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"identify","messageId":"i3","anonymousId":"a2","traits":{"lastName":"Lovelace"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"group","messageId":"g1","userId":"u1","groupId":"acme","traits":{"website":"acme.test"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"group","messageId":"g3","anonymousId":"a3","groupId":"acme","traits":{"revenue":5},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c3","anonymousId":"a3","event":"Live Chat Conversation Started","properties":{"subject":"y"},"timestamp":"` + at + `"}`),
	}))
	rep, err := tb.store.Forget(ctx, mapping.KindAnonymous, "a2")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.AnonymousIDs, []string{"a1", "a2"}) || !reflect.DeepEqual(rep.UserIDs, []string{"u1"}) {
		t.Fatalf("forgot %v %v, want a1 a2 and u1", rep.AnonymousIDs, rep.UserIDs)
	}
	want := map[string]int64{"traits": 2, "identity_links": 2, "group_memberships": 1, "conversations": 1, "prechat_documents": 1, "applied_messages": 5}
	if !reflect.DeepEqual(rep.Deleted, want) {
		t.Fatalf("deleted %v, want %v", rep.Deleted, want)
	}
	if _, _, err := tb.store.DocumentGet(ctx, "a1"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("a1's document survived: %v", err)
	}
	if _, _, err := tb.store.DocumentGet(ctx, "a3"); err != nil {
		t.Fatalf("someone else's document was deleted: %v", err)
	}
	sup, err := tb.store.Suppressed(ctx, []string{"a1", "a2", "u1", "a3"})
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

func TestExpireDeletesWhatOutlivedItsWindow(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	old := tb.now.Add(-25 * time.Minute).Format(time.RFC3339Nano)
	fresh := tb.now.Format(time.RFC3339Nano)
	tb.apply(t, decodeAll(t, [][]byte{
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
