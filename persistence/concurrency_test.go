package persistence_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// holdable is a store whose next transaction, once armed, stops just
// before its commit until released: another process's transaction in
// flight, as long as a test needs.
type holdable struct {
	*persistence.Store
	armed   atomic.Bool
	holding chan struct{}
	release chan struct{}
}

func openHoldable(t *testing.T, url string, now func() time.Time, recheck time.Duration) *holdable {
	t.Helper()
	h := &holdable{holding: make(chan struct{}), release: make(chan struct{})}
	s, err := persistence.Open(context.Background(), url, &persistence.Config{Now: now, RecheckDelay: recheck, BeforeCommit: func() {
		if h.armed.CompareAndSwap(true, false) {
			h.holding <- struct{}{}
			<-h.release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	h.Store = s
	return h
}

// hold runs fn, a transaction of h's, in the background, returns once it
// is held before its commit, and returns a func that releases it and
// returns fn's error.
func (h *holdable) hold(t *testing.T, fn func() error) (release func() error) {
	t.Helper()
	h.armed.Store(true)
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case <-h.holding:
	case err := <-done:
		t.Fatalf("the transaction to hold ended first: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the transaction to hold never reached its commit")
	}
	var once sync.Once
	var err error
	release = func() error {
		once.Do(func() { h.release <- struct{}{}; err = <-done })
		return err
	}
	// A test that fails while holding lets the transaction end before the
	// store closes (cleanups run last first).
	t.Cleanup(func() { _ = release() })
	return release
}

// race is two processes' stores on one database, a fixed clock, the test
// settings and a deadline: the set-up of a test that makes them race.
type race struct {
	t    *testing.T
	ctx  context.Context
	url  string
	now  time.Time
	seq  int
	a, b *holdable
	mat  *mapping.Materializer
}

// newRace opens two holdable stores with this RecheckDelay on a new
// database.
func newRace(t *testing.T, recheck time.Duration) *race {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	r := &race{t: t, ctx: ctx, url: persistencetest.NewDatabase(t), now: time.Now().UTC().Truncate(time.Microsecond),
		mat: &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute}}
	r.a, r.b = r.open(recheck), r.open(recheck)
	return r
}

// open opens another store on the race's database.
func (r *race) open(recheck time.Duration) *holdable {
	return openHoldable(r.t, r.url, func() time.Time { return r.now }, recheck)
}

// batch decodes the events into one batch as the pipeline admits them,
// each timed a millisecond after the one before ("AT" in the JSON), and
// with u's identity proof ("PROOF(u)").
func (r *race) batch(raws ...string) *mapping.Batch {
	r.t.Helper()
	bt := mapping.NewBatch()
	for _, raw := range raws {
		r.seq++
		raw = strings.ReplaceAll(raw, "AT", r.now.Add(time.Duration(r.seq)*time.Millisecond).Format(time.RFC3339Nano))
		raw = proofs.ReplaceAllStringFunc(raw, func(m string) string { return mappingtest.Proof(proofs.FindStringSubmatch(m)[1]) })
		e, err := mapping.Decode([]byte(raw), "")
		if err != nil {
			r.t.Fatal(err)
		}
		mappingtest.Policy().Admit(&e, r.now)
		bt.Add(&e, r.now)
	}
	return bt
}

var proofs = regexp.MustCompile(`PROOF\(([^)]*)\)`)

// apply applies the events with store s, failing the test on an error.
func (r *race) apply(s *holdable, raws ...string) {
	r.t.Helper()
	if _, err := s.ApplyBatch(r.ctx, r.batch(raws...)); err != nil {
		r.t.Fatal(err)
	}
}

// shows reports whether the visitor's document holds the quoted text.
func (r *race) shows(anon, text string) bool {
	raw, _, err := r.b.DocumentGet(r.ctx, anon)
	return err == nil && strings.Contains(string(raw), `"`+text+`"`)
}

// waitsForLock returns once a transaction waits for a lock of locktype
// ("transactionid": a row; "advisory"), failing the test if ended, the
// result of what should be waiting, comes first.
func (r *race) waitsForLock(locktype string, ended <-chan error, what string) {
	r.t.Helper()
	conn, err := pgx.Connect(r.ctx, r.url)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for waiting := 0; waiting == 0; {
		select {
		case err := <-ended:
			r.t.Fatalf("%s did not wait: %v", what, err)
		case <-r.ctx.Done():
			r.t.Fatalf("%s never waited", what)
		case <-time.After(10 * time.Millisecond):
		}
		if err := conn.QueryRow(r.ctx, `SELECT count(*) FROM pg_locks WHERE locktype = $1 AND NOT granted`, locktype).Scan(&waiting); err != nil {
			r.t.Fatal(err)
		}
	}
}

// recheckedIn refreshes until the visitor's document holds text, which
// must not be before the recheck delay since start (else the test did not
// make its race); it skips when the machine was too slow to tell.
func (r *race) recheckedIn(anon, text string, start time.Time, recheck time.Duration) {
	r.t.Helper()
	persistencetest.Refresh(r.t, r.b.Store, r.mat)
	if r.shows(anon, text) {
		if time.Since(start) < recheck {
			r.t.Fatal("the change shows before the recheck: the test no longer makes the race it is about")
		}
		r.t.Skip("the machine took longer than the recheck delay to get here")
	}
	for !r.shows(anon, text) {
		if r.ctx.Err() != nil {
			r.t.Fatalf("the recheck never rebuilt %s's document with %q", anon, text)
		}
		time.Sleep(100 * time.Millisecond)
		persistencetest.Refresh(r.t, r.b.Store, r.mat)
	}
}

const conversationStart = `{"type":"track","messageId":"c-%s","anonymousId":"%s","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"AT"}`

// TestTwoProcessesWriteDocumentsAtOnce: two stores on one database (two
// consumer processes) share no lock beyond the rows both write. While one
// process's batch, then its refresh, is held open just before its commit,
// the other applies a batch and rebuilds a document of another visitor
// (with the documents lock of old, both waited for the held transaction).
// A change to the held refresh's own visitor waits for it instead, and is
// then in that visitor's document: no refresh is lost.
func TestTwoProcessesWriteDocumentsAtOnce(t *testing.T) {
	t.Parallel()
	r := newRace(t, 0)
	a, b, ctx := r.a, r.b, r.ctx
	identify := func(anon, name string) *mapping.Batch {
		return r.batch(`{"type":"identify","messageId":"` + anon + name + `","anonymousId":"` + anon + `","traits":{"firstName":"` + name + `"},"timestamp":"AT"}`)
	}
	r.apply(b, fmt.Sprintf(conversationStart, "va", "va"), fmt.Sprintf(conversationStart, "vb", "vb"))
	persistencetest.Refresh(t, b.Store, r.mat)

	// A batch of a's in flight: b applies one and refreshes its visitor.
	release := a.hold(t, func() error { _, err := a.ApplyBatch(ctx, identify("va", "Ada")); return err })
	if _, err := b.ApplyBatch(ctx, identify("vb", "Bea")); err != nil {
		t.Fatalf("b's batch beside a's: %v", err)
	}
	if res, err := b.RefreshQueued(ctx, r.mat, 1000, 0, ""); err != nil || res.Documents != 1 || !r.shows("vb", "Bea") {
		t.Fatalf("b's refresh beside a's batch: %+v, %v; vb shows Bea: %v", res, err, r.shows("vb", "Bea"))
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}

	// A refresh of a's in flight (va's document): b refreshes vb's.
	release = a.hold(t, func() error { _, err := a.RefreshQueued(ctx, r.mat, 1000, 0, ""); return err })
	if _, err := b.ApplyBatch(ctx, identify("vb", "Bee")); err != nil {
		t.Fatal(err)
	}
	if res, err := b.RefreshQueued(ctx, r.mat, 1000, 0, ""); err != nil || res.Documents != 1 || !r.shows("vb", "Bee") {
		t.Fatalf("b's refresh beside a's: %+v, %v", res, err)
	}
	// A change to va now waits for a's refresh, then is queued anew.
	changed := make(chan error, 1)
	go func() { _, err := b.ApplyBatch(ctx, identify("va", "Ava")); changed <- err }()
	r.waitsForLock("transactionid", changed, "b's change to va, while a's refresh of va held its queue entry,")
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-changed; err != nil {
		t.Fatal(err)
	}
	if !r.shows("va", "Ada") || r.shows("va", "Ava") {
		t.Fatal("a's refresh did not write va's document as of its own read")
	}
	persistencetest.Refresh(t, b.Store, r.mat)
	if !r.shows("va", "Ava") {
		t.Fatal("the change to va made during a's refresh is lost")
	}
}

// TestAChangeBesideAFirstConversationStartIsRecheckedIn: a batch that
// changes a visitor with no conversation yet queues no refresh (no document
// to rebuild); one running at the same time that starts the visitor's first
// conversation does not see that change, nor does the refresh that follows
// it. The recheck that refresh queued (a first document), RecheckDelay
// later, rebuilds the document with the change.
func TestAChangeBesideAFirstConversationStartIsRecheckedIn(t *testing.T) {
	t.Parallel()
	const recheck = 5 * time.Second
	r := newRace(t, recheck)
	release := r.a.hold(t, func() error {
		_, err := r.a.ApplyBatch(r.ctx, r.batch(`{"type":"identify","messageId":"i","anonymousId":"v","traits":{"firstName":"Ada"},"timestamp":"AT"}`))
		return err
	})
	start := time.Now()
	r.apply(r.b, fmt.Sprintf(conversationStart, "v", "v"))
	persistencetest.Refresh(t, r.b.Store, r.mat)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	r.recheckedIn("v", "Ada", start, recheck)
}

// TestASharedChangeBesideARefreshThatStartsShowingItIsRecheckedIn: a batch
// changes a verified user's shared traits while no visitor has a verified
// link to that user, so it queues nothing; beside it, a visitor's verified
// link to the user is applied and refreshed: the refresh starts building
// the visitor's document from the user but cannot see the held change. The
// recheck that refresh queued (its document's shared profiles changed),
// RecheckDelay later, rebuilds the document with the change.
func TestASharedChangeBesideARefreshThatStartsShowingItIsRecheckedIn(t *testing.T) {
	t.Parallel()
	const recheck = 5 * time.Second
	r := newRace(t, recheck)
	// The visitor's first document and its recheck, worked off at once.
	setup := r.open(-1)
	r.apply(setup, fmt.Sprintf(conversationStart, "v", "v"))
	persistencetest.Refresh(t, setup.Store, r.mat)

	release := r.a.hold(t, func() error {
		_, err := r.a.ApplyBatch(r.ctx, r.batch(`{"type":"identify","messageId":"i","userId":"u","traits":{"firstName":"Ada"},"context":PROOF(u),"timestamp":"AT"}`))
		return err
	})
	start := time.Now()
	r.apply(r.b, `{"type":"identify","messageId":"l","anonymousId":"v","userId":"u","context":PROOF(u),"timestamp":"AT"}`)
	persistencetest.Refresh(t, r.b.Store, r.mat)
	if raw, _, err := r.b.DocumentGet(r.ctx, "v"); err != nil || !strings.Contains(string(raw), `"userVerified":true`) {
		t.Fatalf("the link's refresh did not build the document from the verified user: %s, %v", raw, err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	r.recheckedIn("v", "Ada", start, recheck)
}

// TestAGroupChangeBesideARefreshThatStartsShowingTheGroupIsNotLost: a batch
// writing a group's shared traits is held before its commit; no document is
// built from the group yet, so it queues nothing for the group's members.
// Beside it, a member's membership is applied and refreshed: the refresh,
// about to build the member's document from the group, waits for the held
// batch (a shared lock against its exclusive one), then reads the member
// again and shows the change at once, long before any recheck.
func TestAGroupChangeBesideARefreshThatStartsShowingTheGroupIsNotLost(t *testing.T) {
	t.Parallel()
	r := newRace(t, time.Hour)
	r.apply(r.b, fmt.Sprintf(conversationStart, "v", "v"),
		`{"type":"identify","messageId":"l","anonymousId":"v","userId":"u","traits":{"firstName":"Ada"},"context":PROOF(u),"timestamp":"AT"}`)
	persistencetest.Refresh(t, r.b.Store, r.mat)

	release := r.a.hold(t, func() error {
		_, err := r.a.ApplyBatch(r.ctx, r.batch(`{"type":"group","messageId":"g2","userId":"u2","groupId":"acme","traits":{"website":"acme.example"},"context":PROOF(u2),"timestamp":"AT"}`))
		return err
	})
	r.apply(r.b, `{"type":"group","messageId":"g1","userId":"u","groupId":"acme","context":PROOF(u),"timestamp":"AT"}`)
	refreshed := make(chan error, 1)
	go func() { _, err := r.b.RefreshQueued(r.ctx, r.mat, 1000, 0, ""); refreshed <- err }()
	r.waitsForLock("advisory", refreshed, "the refresh building the document from the group, beside the batch changing the group,")
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if !r.shows("v", "acme.example") {
		t.Fatal("the refresh that waited for the group's change does not show it")
	}
}

// TestATraitRowChangedBesideABatchIsMergedNotOverwritten: a batch that
// changes a trait row while another batch's change to it is in flight
// waits for it and merges into what it committed: the row ends with both
// batches' traits.
func TestATraitRowChangedBesideABatchIsMergedNotOverwritten(t *testing.T) {
	t.Parallel()
	r := newRace(t, time.Hour)
	identify := func(id, trait string) *mapping.Batch {
		return r.batch(`{"type":"identify","messageId":"` + id + `","userId":"u","traits":{` + trait + `},"context":PROOF(u),"timestamp":"AT"}`)
	}
	if _, err := r.b.ApplyBatch(r.ctx, identify("i0", `"email":"ada@example.com"`)); err != nil {
		t.Fatal(err)
	}
	release := r.a.hold(t, func() error { _, err := r.a.ApplyBatch(r.ctx, identify("i1", `"firstName":"Ada"`)); return err })
	applied := make(chan error, 1)
	go func() { _, err := r.b.ApplyBatch(r.ctx, identify("i2", `"lastName":"Lovelace"`)); applied <- err }()
	r.waitsForLock("transactionid", applied, "b's batch, beside a's change to the same row,")
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(r.ctx, r.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var keys string
	if err := conn.QueryRow(r.ctx, `SELECT (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(traits) AS k) FROM traits WHERE subject_kind = 'user' AND subject_id = 'u' AND observer = ''`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != "email,firstName,lastName" {
		t.Fatalf("u's row holds %s, want email,firstName,lastName", keys)
	}
}
