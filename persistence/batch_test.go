package persistence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

type testBundle struct {
	store *persistence.Store
	// url is the store's database.
	url string
	mat *mapping.Materializer
	// now is the store's clock; tests may move it.
	now time.Time
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	t.Parallel()
	return newBundle(t)
}

func newBundle(t *testing.T) *testBundle {
	t.Helper()
	tb := &testBundle{now: time.Now().UTC().Truncate(time.Microsecond)}
	tb.store, tb.url = persistencetest.NewStore(t, &persistence.Config{Now: func() time.Time { return tb.now }})
	return withSettings(tb)
}

func withSettings(tb *testBundle) *testBundle {
	tb.mat = &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute}
	return tb
}

// decodeAll decodes generated events and admits them as the pipeline
// would (mappingtest.Policy, record time now); fallback ids are never
// needed.
func (tb *testBundle) decodeAll(t *testing.T, raws [][]byte) []mapping.Event {
	t.Helper()
	out := make([]mapping.Event, len(raws))
	policy := mappingtest.Policy()
	for i, r := range raws {
		e, err := mapping.Decode(r, "")
		if err != nil {
			t.Fatalf("decode %s: %v", r, err)
		}
		policy.Admit(&e, tb.now)
		out[i] = e
	}
	return out
}

// newBatch folds the events into a batch at the bundle's time.
func newBatch(tb *testBundle, events []mapping.Event) *mapping.Batch {
	b := mapping.NewBatch()
	for i := range events {
		b.Add(&events[i], tb.now)
	}
	return b
}

func (tb *testBundle) apply(t *testing.T, events []mapping.Event, positions ...mapping.Position) mapping.BatchResult {
	t.Helper()
	b := mapping.NewBatch()
	for i := range events {
		b.Add(&events[i], tb.now)
	}
	b.Positions = positions
	res, err := tb.store.ApplyBatch(context.Background(), b)
	if err != nil {
		t.Fatalf("apply batch: %v", err)
	}
	refreshed := persistencetest.Refresh(t, tb.store, tb.mat)
	res.Documents, res.Visitors = refreshed.Documents, refreshed.Visitors
	return res
}

// modelDocuments builds, with the pure model, the document of every visitor
// with a conversation start.
func (tb *testBundle) modelDocuments(events []mapping.Event) map[string]mapping.Document {
	st := mapping.NewState()
	for i := range events {
		st.Apply(&events[i], tb.now)
	}
	docs := map[string]mapping.Document{}
	for a := range st.Conversations {
		v, _ := st.Visitor(a)
		docs[a] = tb.mat.Document(v)
	}
	return docs
}

func (tb *testBundle) storedDocument(t *testing.T, anon string) mapping.Document {
	t.Helper()
	raw, _, err := tb.store.DocumentGet(context.Background(), anon)
	if err != nil {
		t.Fatalf("get document %s: %v", anon, err)
	}
	var d mapping.Document
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("decode stored document: %v", err)
	}
	return d
}

func (tb *testBundle) fingerprint(t *testing.T) map[string]string {
	t.Helper()
	fp, err := tb.store.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func equalJSON(t *testing.T, got, want any) bool {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	var gv, wv any
	_ = json.Unmarshal(g, &gv)
	_ = json.Unmarshal(w, &wv)
	return reflect.DeepEqual(gv, wv)
}

func TestApplyBatchBuildsTheDocumentOfTheModel(t *testing.T) {
	tb := setup(t)
	at := func(d time.Duration) string { return tb.now.Add(d).Format(time.RFC3339Nano) }
	raws := [][]byte{
		[]byte(`{"type":"identify","messageId":"m1","anonymousId":"a1","traits":{"email":"old@example.com","firstName":"Ada"},"timestamp":"` + at(-3*time.Minute) + `"}`),
		[]byte(`{"type":"identify","messageId":"m2","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com","lastName":"Lovelace"},"timestamp":"` + at(-2*time.Minute) + `"}`),
		[]byte(`{"type":"group","messageId":"m3","anonymousId":"a1","userId":"u1","groupId":"g1","traits":{"website":"example.com","revenue":100},"timestamp":"` + at(-time.Minute) + `"}`),
		[]byte(`{"type":"track","messageId":"m4","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"caseStatus":"New","subject":"Help"},"timestamp":"` + at(0) + `"}`),
	}
	events := tb.decodeAll(t, raws)
	res := tb.apply(t, events)
	if res.Documents != 1 {
		t.Fatalf("documents written = %d, want 1", res.Documents)
	}
	got := tb.storedDocument(t, "a1")
	want := tb.modelDocuments(events)["a1"]
	if !equalJSON(t, got, want) {
		t.Fatalf("stored document differs from the model:\n got %+v\nwant %+v", got, want)
	}
	if got.VisitorName != "Ada Lovelace" || len(got.Details) != 7 || got.UserID != "u1" || got.GroupID != "g1" {
		t.Fatalf("unexpected document: %+v", got)
	}
}

func TestApplyBatchRefreshesDocumentsWhenLaterEventsChangeTheVisitor(t *testing.T) {
	tb := setup(t)
	at := func(d time.Duration) string { return tb.now.Add(d).Format(time.RFC3339Nano) }
	first := tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"a1","userId":"u1","event":"Live Chat Conversation Started","properties":{"subject":"Help"},"context":` + mappingtest.Proof("u1") + `,"timestamp":"` + at(-time.Minute) + `"}`),
	})
	tb.apply(t, first)
	if d := tb.storedDocument(t, "a1"); len(d.Details) != 1 {
		t.Fatalf("before identify: %d details, want 1 (the case subject)", len(d.Details))
	}
	// A later batch identifies the user (by userId only, from the site's
	// server) and updates the group.
	second := tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"identify","messageId":"i1","userId":"u1","traits":{"email":"ada@example.com"},"context":` + mappingtest.Proof("u1") + `,"timestamp":"` + at(0) + `"}`),
		[]byte(`{"type":"group","messageId":"g1","userId":"u1","groupId":"acme","traits":{"website":"acme.test"},"context":` + mappingtest.Proof("u1") + `,"timestamp":"` + at(0) + `"}`),
	})
	res := tb.apply(t, second)
	if res.Documents != 1 {
		t.Fatalf("documents refreshed = %d, want 1", res.Documents)
	}
	got := tb.storedDocument(t, "a1")
	want := tb.modelDocuments(append(first, second...))["a1"]
	if !equalJSON(t, got, want) {
		t.Fatalf("refreshed document differs from the model:\n got %+v\nwant %+v", got, want)
	}
	if len(got.Details) != 3 {
		t.Fatalf("refreshed document has %d details, want 3", len(got.Details))
	}
	// A verified group trait change by another member reaches the
	// member's document too.
	third := tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"group","messageId":"g2","anonymousId":"someone-else","userId":"u2","groupId":"acme","traits":{"revenue":5},"context":` + mappingtest.Proof("u2") + `,"timestamp":"` + at(time.Second) + `"}`),
	})
	if res := tb.apply(t, third); res.Documents != 1 {
		t.Fatalf("group change refreshed %d documents, want 1", res.Documents)
	}
	if got := tb.storedDocument(t, "a1"); len(got.Details) != 4 {
		t.Fatalf("after group change: %d details, want 4", len(got.Details))
	}
	// An unverified one (anyone can send it) is its sender's view only.
	fourth := tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"group","messageId":"g3","anonymousId":"attacker","userId":"u1","groupId":"acme","traits":{"website":"evil.test","revenue":6},"timestamp":"` + at(2*time.Second) + `"}`),
	})
	if res := tb.apply(t, fourth); res.Documents != 0 {
		t.Fatalf("unverified group change refreshed %d documents, want 0", res.Documents)
	}
	got = tb.storedDocument(t, "a1")
	if want := tb.modelDocuments(append(append(append(first, second...), third...), fourth...))["a1"]; !equalJSON(t, got, want) {
		t.Fatalf("document differs from the model:\n got %+v\nwant %+v", got, want)
	}
	for _, d := range got.Details {
		if strings.Contains(string(d.Value), "evil") || string(d.Value) == "6" {
			t.Fatalf("an unverified group call reached a member's document: %+v", d)
		}
	}
}

func TestApplyBatchConvergesWhateverTheOrderAndRepetition(t *testing.T) {
	tb := setup(t)
	other := newBundle(t)
	other.now = tb.now
	gen := mappingtest.NewGenerator(42, 20, 8, 4)
	gen.Base = tb.now
	events := tb.decodeAll(t, gen.Events(600))

	// Reference: one batch in generated order.
	tb.apply(t, events)
	want := tb.fingerprint(t)

	// Shuffled, with duplicates, split into uneven batches, one batch twice.
	r := rand.New(rand.NewPCG(7, 7))
	shuffled := append([]mapping.Event(nil), events...)
	for range 150 {
		shuffled = append(shuffled, events[r.IntN(len(events))])
	}
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < len(shuffled); {
		n := 1 + r.IntN(80)
		end := min(i+n, len(shuffled))
		other.apply(t, shuffled[i:end])
		if i == 0 {
			other.apply(t, shuffled[i:end])
		}
		i = end
	}
	got := other.fingerprint(t)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fingerprints differ:\n got %v\nwant %v", got, want)
	}

	// And every stored document equals the model's.
	for anon, doc := range tb.modelDocuments(events) {
		if stored := other.storedDocument(t, anon); !equalJSON(t, stored, doc) {
			t.Fatalf("document %s differs from the model:\n got %+v\nwant %+v", anon, stored, doc)
		}
	}
}

func TestApplyBatchStoresPositionsMonotonically(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	pos := func(p int, next int64) mapping.Position {
		return mapping.Position{Group: "g", Topic: "t", Partition: p, NextOffset: next}
	}
	tb.apply(t, nil, pos(0, 10), pos(1, 5))
	tb.apply(t, nil, pos(0, 7)) // a stale consumer must not move it back
	got, err := tb.store.OffsetsGet(ctx, "g", "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int64{0: 10, 1: 5}; !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets = %v, want %v", got, want)
	}
	if other, _ := tb.store.OffsetsGet(ctx, "other-group", "t"); len(other) != 0 {
		t.Fatalf("offsets of another group = %v, want none", other)
	}
}

func TestApplyBatchKeepsEachDeadLetterOnce(t *testing.T) {
	tb := setup(t)
	b := mapping.NewBatch()
	for i := range 3 {
		b.DeadLetters = append(b.DeadLetters, mapping.DeadLetter{Topic: "t", Partition: 0, Offset: int64(i), Raw: []byte(fmt.Sprintf("bad %d", i)), Reason: "invalid event: test", Time: tb.now})
	}
	for range 2 {
		if _, err := tb.store.ApplyBatch(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if fp := tb.fingerprint(t); fp["dead_letters"][:2] != "3:" {
		t.Fatalf("dead letters fingerprint %q, want 3 rows", fp["dead_letters"])
	}
}

func TestDocumentGetHidesExpiredDocuments(t *testing.T) {
	tb := setup(t)
	old := tb.now.Add(-29 * time.Minute).Format(time.RFC3339Nano)
	tb.apply(t, tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` + old + `"}`),
	}))
	tb.storedDocument(t, "a1")
	tb.now = tb.now.Add(2 * time.Minute)
	if _, _, err := tb.store.DocumentGet(context.Background(), "a1"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("expired document: err = %v, want ErrNotFound", err)
	}
	// An event for an expired conversation does not bring the document back.
	res := tb.apply(t, tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"a1","traits":{"email":"x@example.com"},"timestamp":"` + tb.now.Format(time.RFC3339Nano) + `"}`),
	}))
	if res.Documents != 0 {
		t.Fatalf("documents written for an expired conversation: %d", res.Documents)
	}
}

// TestApplyBatchConvergesOverManySeeds: for many seeds, events with skewed
// device clocks (event time from receivedAt − (sentAt − originalTimestamp)),
// applied shuffled, with duplicates, in batches of random sizes, give the
// same state as the whole stream applied at once.
func TestApplyBatchConvergesOverManySeeds(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			tb := setup(t)
			other := newBundle(t)
			other.now = tb.now
			gen := mappingtest.NewGenerator(uint64(1000+seed), 15, 6, 3)
			gen.Base, gen.Skew = tb.now, true
			events := tb.decodeAll(t, gen.Events(250))
			tb.apply(t, events)
			r := rand.New(rand.NewPCG(uint64(seed), 99))
			shuffled := append([]mapping.Event(nil), events...)
			for range 60 {
				shuffled = append(shuffled, events[r.IntN(len(events))])
			}
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for i := 0; i < len(shuffled); {
				end := min(i+1+r.IntN(40), len(shuffled))
				other.apply(t, shuffled[i:end])
				i = end
			}
			if got, want := other.fingerprint(t), tb.fingerprint(t); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: state differs:\n got %v\nwant %v", seed, got, want)
			}
		})
	}
}
