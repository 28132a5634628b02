package persistence_test

import (
	"context"
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

// TestTwoProcessesWriteDocumentsAtOnce: two stores on one database (two
// consumer processes) share no lock beyond the rows both write. While one
// process's batch, then its refresh, is held open just before its commit,
// the other applies a batch and rebuilds a document of another visitor
// (with the documents lock of old, both waited for the held transaction).
// A change to the held refresh's own visitor waits for it instead, and is
// then in that visitor's document: no refresh is lost.
func TestTwoProcessesWriteDocumentsAtOnce(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	url := persistencetest.NewDatabase(t)
	a, b := openHoldable(t, url, clock, 0), openHoldable(t, url, clock, 0)
	mat := &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seq := 0
	batch := func(raws ...string) *mapping.Batch {
		bt := mapping.NewBatch()
		for _, raw := range raws {
			seq++
			raw = strings.ReplaceAll(raw, "AT", now.Add(time.Duration(seq)*time.Millisecond).Format(time.RFC3339Nano))
			e, err := mapping.Decode([]byte(raw), "")
			if err != nil {
				t.Fatal(err)
			}
			mappingtest.Policy().Admit(&e, now)
			bt.Add(&e, now)
		}
		return bt
	}
	identify := func(anon, name string) *mapping.Batch {
		return batch(`{"type":"identify","messageId":"` + anon + name + `","anonymousId":"` + anon + `","traits":{"firstName":"` + name + `"},"timestamp":"AT"}`)
	}
	shows := func(anon, name string) bool {
		raw, _, err := a.DocumentGet(ctx, anon)
		return err == nil && strings.Contains(string(raw), `"`+name+`"`)
	}
	if _, err := b.ApplyBatch(ctx, batch(
		`{"type":"track","messageId":"ca","anonymousId":"va","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"AT"}`,
		`{"type":"track","messageId":"cb","anonymousId":"vb","event":"Live Chat Conversation Started","properties":{"subject":"y"},"timestamp":"AT"}`)); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, b.Store, mat)

	// A batch of a's in flight: b applies one and refreshes its visitor.
	release := a.hold(t, func() error { _, err := a.ApplyBatch(ctx, identify("va", "Ada")); return err })
	if _, err := b.ApplyBatch(ctx, identify("vb", "Bea")); err != nil {
		t.Fatalf("b's batch beside a's: %v", err)
	}
	if res, err := b.RefreshQueued(ctx, mat, 1000, 0, ""); err != nil || res.Documents != 1 || !shows("vb", "Bea") {
		t.Fatalf("b's refresh beside a's batch: %+v, %v; vb shows Bea: %v", res, err, shows("vb", "Bea"))
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}

	// A refresh of a's in flight (va's document): b refreshes vb's.
	release = a.hold(t, func() error { _, err := a.RefreshQueued(ctx, mat, 1000, 0, ""); return err })
	if _, err := b.ApplyBatch(ctx, identify("vb", "Bee")); err != nil {
		t.Fatal(err)
	}
	if res, err := b.RefreshQueued(ctx, mat, 1000, 0, ""); err != nil || res.Documents != 1 || !shows("vb", "Bee") {
		t.Fatalf("b's refresh beside a's: %+v, %v", res, err)
	}
	// A change to va now waits for a's refresh, then is queued anew.
	changed := make(chan error, 1)
	go func() { _, err := b.ApplyBatch(ctx, identify("va", "Ava")); changed <- err }()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for waiting := 0; waiting == 0; {
		select {
		case err := <-changed:
			t.Fatalf("a change to va committed while a's refresh of va held its queue entry: %v", err)
		case <-ctx.Done():
			t.Fatal("b's change to va never waited for a's refresh")
		case <-time.After(10 * time.Millisecond):
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-changed; err != nil {
		t.Fatal(err)
	}
	if !shows("va", "Ada") || shows("va", "Ava") {
		t.Fatal("a's refresh did not write va's document as of its own read")
	}
	persistencetest.Refresh(t, b.Store, mat)
	if !shows("va", "Ava") {
		t.Fatal("the change to va made during a's refresh is lost")
	}
}

// TestAChangeBesideAFirstConversationStartIsRecheckedIn: a batch that
// changes a visitor with no conversation yet queues no refresh (no document
// to rebuild); one running at the same time that starts the visitor's first
// conversation does not see that change, nor does the refresh that follows
// it. The start's recheck, RecheckDelay later, rebuilds the document with
// the change.
func TestAChangeBesideAFirstConversationStartIsRecheckedIn(t *testing.T) {
	t.Parallel()
	const recheck = 5 * time.Second
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	url := persistencetest.NewDatabase(t)
	a, b := openHoldable(t, url, clock, recheck), openHoldable(t, url, clock, recheck)
	mat := &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	batch := func(raw string) *mapping.Batch {
		e, err := mapping.Decode([]byte(strings.ReplaceAll(raw, "AT", now.Format(time.RFC3339Nano))), "")
		if err != nil {
			t.Fatal(err)
		}
		mappingtest.Policy().Admit(&e, now)
		bt := mapping.NewBatch()
		bt.Add(&e, now)
		return bt
	}
	shows := func() bool {
		raw, _, err := b.DocumentGet(ctx, "v")
		return err == nil && strings.Contains(string(raw), `"Ada"`)
	}
	release := a.hold(t, func() error {
		_, err := a.ApplyBatch(ctx, batch(`{"type":"identify","messageId":"i","anonymousId":"v","traits":{"firstName":"Ada"},"timestamp":"AT"}`))
		return err
	})
	start := time.Now()
	if _, err := b.ApplyBatch(ctx, batch(`{"type":"track","messageId":"c","anonymousId":"v","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"AT"}`)); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, b.Store, mat)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, b.Store, mat)
	if shows() {
		if time.Since(start) < recheck {
			t.Fatal("the change shows before the recheck: the test no longer makes the race it is about")
		}
		t.Skip("the machine took longer than the recheck delay to get here")
	}
	for !shows() {
		if ctx.Err() != nil {
			t.Fatal("the recheck never rebuilt the document with the change made beside the conversation start")
		}
		time.Sleep(100 * time.Millisecond)
		persistencetest.Refresh(t, b.Store, mat)
	}
}

// TestASharedChangeBesideARefreshThatStartsShowingItIsRecheckedIn: a batch
// changes a verified user's shared traits while no document is built from
// that user, so it queues nothing; beside it, a visitor's verified link to
// the user is applied and refreshed: the refresh starts building the
// visitor's document from the user but cannot see the held change. The
// recheck that refresh queued (its document's shared profiles changed),
// RecheckDelay later, rebuilds the document with the change.
func TestASharedChangeBesideARefreshThatStartsShowingItIsRecheckedIn(t *testing.T) {
	t.Parallel()
	const recheck = 5 * time.Second
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	url := persistencetest.NewDatabase(t)
	a, b := openHoldable(t, url, clock, recheck), openHoldable(t, url, clock, recheck)
	// The visitor's first document and its recheck, worked off at once.
	setup := openHoldable(t, url, clock, -1)
	mat := &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	batch := func(raw string) *mapping.Batch {
		raw = strings.ReplaceAll(raw, "PROOF", mappingtest.Proof("u"))
		e, err := mapping.Decode([]byte(strings.ReplaceAll(raw, "AT", now.Format(time.RFC3339Nano))), "")
		if err != nil {
			t.Fatal(err)
		}
		mappingtest.Policy().Admit(&e, now)
		bt := mapping.NewBatch()
		bt.Add(&e, now)
		return bt
	}
	shows := func() bool {
		raw, _, err := b.DocumentGet(ctx, "v")
		return err == nil && strings.Contains(string(raw), `"Ada"`)
	}
	if _, err := setup.ApplyBatch(ctx, batch(`{"type":"track","messageId":"c","anonymousId":"v","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"AT"}`)); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, setup.Store, mat)

	release := a.hold(t, func() error {
		_, err := a.ApplyBatch(ctx, batch(`{"type":"identify","messageId":"i","userId":"u","traits":{"firstName":"Ada"},"context":PROOF,"timestamp":"AT"}`))
		return err
	})
	start := time.Now()
	if _, err := b.ApplyBatch(ctx, batch(`{"type":"identify","messageId":"l","anonymousId":"v","userId":"u","context":PROOF,"timestamp":"AT"}`)); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, b.Store, mat)
	if raw, _, err := b.DocumentGet(ctx, "v"); err != nil || !strings.Contains(string(raw), `"userVerified":true`) {
		t.Fatalf("the link's refresh did not build the document from the verified user: %s, %v", raw, err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, b.Store, mat)
	if shows() {
		if time.Since(start) < recheck {
			t.Fatal("the change shows before the recheck: the test no longer makes the race it is about")
		}
		t.Skip("the machine took longer than the recheck delay to get here")
	}
	for !shows() {
		if ctx.Err() != nil {
			t.Fatal("the recheck never rebuilt the document with the user's change made beside the refresh that linked it")
		}
		time.Sleep(100 * time.Millisecond)
		persistencetest.Refresh(t, b.Store, mat)
	}
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
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	url := persistencetest.NewDatabase(t)
	a, b := openHoldable(t, url, clock, time.Hour), openHoldable(t, url, clock, time.Hour)
	mat := &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	batch := func(raw, user string) *mapping.Batch {
		raw = strings.ReplaceAll(raw, "PROOF", mappingtest.Proof(user))
		e, err := mapping.Decode([]byte(strings.ReplaceAll(raw, "AT", now.Format(time.RFC3339Nano))), "")
		if err != nil {
			t.Fatal(err)
		}
		mappingtest.Policy().Admit(&e, now)
		bt := mapping.NewBatch()
		bt.Add(&e, now)
		return bt
	}
	for _, raw := range []string{
		`{"type":"track","messageId":"c","anonymousId":"v","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"AT"}`,
		`{"type":"identify","messageId":"l","anonymousId":"v","userId":"u","traits":{"firstName":"Ada"},"context":PROOF,"timestamp":"AT"}`,
	} {
		if _, err := b.ApplyBatch(ctx, batch(raw, "u")); err != nil {
			t.Fatal(err)
		}
	}
	persistencetest.Refresh(t, b.Store, mat)

	release := a.hold(t, func() error {
		_, err := a.ApplyBatch(ctx, batch(`{"type":"group","messageId":"g2","userId":"u2","groupId":"acme","traits":{"website":"acme.example"},"context":PROOF,"timestamp":"AT"}`, "u2"))
		return err
	})
	if _, err := b.ApplyBatch(ctx, batch(`{"type":"group","messageId":"g1","userId":"u","groupId":"acme","context":PROOF,"timestamp":"AT"}`, "u")); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan error, 1)
	go func() { _, err := b.RefreshQueued(ctx, mat, 1000, 0, ""); refreshed <- err }()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for waiting := 0; waiting == 0; {
		select {
		case err := <-refreshed:
			t.Fatalf("the refresh building the document from the group did not wait for the batch changing the group: %v", err)
		case <-ctx.Done():
			t.Fatal("the refresh never waited for the group lock")
		case <-time.After(10 * time.Millisecond):
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if raw, _, err := b.DocumentGet(ctx, "v"); err != nil || !strings.Contains(string(raw), `"acme.example"`) {
		t.Fatalf("the refresh that waited for the group's change does not show it: %s, %v", raw, err)
	}
}

// TestATraitRowChangedBesideABatchIsMergedNotOverwritten: a batch that
// changes a trait row while another batch's change to it is in flight
// waits for it and merges into what it committed: the row ends with both
// batches' traits.
func TestATraitRowChangedBesideABatchIsMergedNotOverwritten(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	url := persistencetest.NewDatabase(t)
	a, b := openHoldable(t, url, clock, time.Hour), openHoldable(t, url, clock, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	batch := func(id, trait string) *mapping.Batch {
		raw := `{"type":"identify","messageId":"` + id + `","userId":"u","traits":{` + trait + `},"context":` + mappingtest.Proof("u") + `,"timestamp":"` + now.Format(time.RFC3339Nano) + `"}`
		e, err := mapping.Decode([]byte(raw), "")
		if err != nil {
			t.Fatal(err)
		}
		mappingtest.Policy().Admit(&e, now)
		bt := mapping.NewBatch()
		bt.Add(&e, now)
		return bt
	}
	if _, err := b.ApplyBatch(ctx, batch("i0", `"email":"ada@example.com"`)); err != nil {
		t.Fatal(err)
	}
	release := a.hold(t, func() error { _, err := a.ApplyBatch(ctx, batch("i1", `"firstName":"Ada"`)); return err })
	applied := make(chan error, 1)
	go func() { _, err := b.ApplyBatch(ctx, batch("i2", `"lastName":"Lovelace"`)); applied <- err }()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for waiting := 0; waiting == 0; {
		select {
		case err := <-applied:
			t.Fatalf("b's batch did not wait for a's change to the same row: %v", err)
		case <-ctx.Done():
			t.Fatal("b's batch never waited for a's")
		case <-time.After(10 * time.Millisecond):
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	var keys string
	if err := conn.QueryRow(ctx, `SELECT (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(traits) AS k) FROM traits WHERE subject_kind = 'user' AND subject_id = 'u' AND observer = ''`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != "email,firstName,lastName" {
		t.Fatalf("u's row holds %s, want email,firstName,lastName", keys)
	}
}
