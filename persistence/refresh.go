package persistence

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// claimQuery claims, for a lease of $2, the oldest queued changes queued
// at least $3 ago that no refresh holds (claimed_until unset or past) and
// no transaction has locked (a batch that re-armed one has not committed:
// its change is not visible yet). It returns them and the claim's stamp (the claim
// transaction's start plus the lease: the same for all of them, and
// another claim's only if it started in the same microsecond, when the two
// claimed different entries).
const claimQuery = `
UPDATE document_refreshes r SET claimed_until = now() + $2::interval
FROM (SELECT subject_kind, subject_id FROM document_refreshes
      WHERE (claimed_until IS NULL OR claimed_until < now()) AND queued_at <= now() - $3::interval
      ORDER BY queued_at, subject_kind, subject_id LIMIT $1 FOR UPDATE SKIP LOCKED) c
WHERE r.subject_kind = c.subject_kind AND r.subject_id = c.subject_id
RETURNING r.subject_kind, r.subject_id, r.resume_after, r.traceparent, r.claimed_until`

// claimTimeout bounds a claim transaction.
const claimTimeout = 10 * time.Second

// refreshLease is how long a claim keeps other refreshes off its entries:
// longer than a refresh takes; a refresh that died frees them after it.
const refreshLease = time.Minute

// liveQuery keeps, of the visitors in $1, those with an unexpired
// conversation start (after $2): only they have documents.
const liveQuery = `
SELECT anonymous_id FROM conversations WHERE anonymous_id = ANY($1) AND event_time > $2`

// expandQuery lists, for each queued user or group ($1 kinds, $2 ids, $3
// where a paged expansion resumes), its live visitors in anonymous_id
// order, at most $5 each: a user's, its verified links' visitors with a
// conversation start after $6 (index probes fenced with OFFSET 0, so that
// Postgres cannot plan them as full scans on tables not yet analysed, see
// migration 004); a group's, the visitors whose unexpired documents
// (expires_at after $4) are built from it (prechat_documents.group_id), one
// index range scan in the index's order, which the LIMIT keeps Postgres
// choosing whatever its estimates.
const expandQuery = `
SELECT m.ord, v.anonymous_id
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS m(kind, id, resume, ord),
LATERAL (
    (SELECT l.anonymous_id
     FROM (SELECT anonymous_id FROM identity_links WHERE m.kind = 'user' AND user_id = m.id AND verified OFFSET 0) l,
     LATERAL (SELECT 1 FROM conversations c WHERE c.anonymous_id = l.anonymous_id AND c.event_time > $6 OFFSET 0) c
     WHERE l.anonymous_id > coalesce(m.resume, '')
     ORDER BY l.anonymous_id LIMIT $5)
    UNION ALL
    (SELECT d.anonymous_id FROM prechat_documents d
     WHERE m.kind = 'group' AND d.group_id = m.id AND d.anonymous_id > coalesce(m.resume, '') AND d.expires_at > $4
     ORDER BY d.anonymous_id LIMIT $5)
) v
ORDER BY m.ord, v.anonymous_id`

// lockQuery locks the documents of the visitors in $1 (sorted), creating a
// placeholder for those without one, which the transaction overwrites or
// deletes: a refresh reads a visitor's state only once it holds the
// visitor's row, so of two refreshes of one visitor the second reads what
// the first committed. ON CONFLICT DO UPDATE … WHERE false locks an existing
// row without writing it. It returns the placeholders.
const lockQuery = `
INSERT INTO prechat_documents AS d (anonymous_id, document, expires_at)
SELECT id, '{}', '-infinity' FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n
ON CONFLICT (anonymous_id) DO UPDATE SET written_at = d.written_at WHERE false
RETURNING anonymous_id`

// RefreshQueued rebuilds, in one transaction, the documents that what
// batches queued (document_refreshes) makes stale: it claims the limit
// oldest entries no other transaction holds, expands users and groups to
// their live visitors, locks and rebuilds each visitor's document once, and
// writes those that changed. An expansion with more than FanOutLimit
// visitors is paged: the rest waits, in order, for a later call. The
// result's Queued is the number of entries claimed (limit: there may be
// more), Documents and Visitors the documents written; every claimed
// visitor is notified, so that a reader waiting for it re-checks.
//
// Changes queued less than settle ago are left for a later call (0: none
// is): under backlog, a change then waits for the next changes of its
// visitor, user or group, and their documents are rebuilt once for all of
// them (entries keep the time they were first queued).
//
// trace is the W3C traceparent of the caller's refresh span ("" when not
// traced), stored with the documents it writes; the result's Links are the
// traceparents the claimed entries' batches left (mapping.Batch.Trace).
//
// Concurrent calls (every consumer runs them) and batches never wait for a
// lock that all of them share: see migration 008 for why no refresh is
// lost.
func (s *Store) RefreshQueued(ctx context.Context, m *mapping.Materializer, limit int, settle time.Duration, trace string) (mapping.BatchResult, error) {
	claimed, links, stamp, err := s.claim(ctx, limit, settle)
	if err != nil || len(claimed) == 0 {
		return mapping.BatchResult{}, err
	}
	var res mapping.BatchResult
	err = s.withTx(ctx, func(tx pgx.Tx) error {
		res = mapping.BatchResult{Queued: len(claimed), Links: links}
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		plan, err := s.planRefresh(ctx, tx, claimed, s.now(), m.TTL)
		if err != nil {
			return err
		}
		written, err := s.rebuild(ctx, tx, plan.visitors, m, trace)
		if err != nil {
			return err
		}
		res.Documents, res.Visitors, res.Unwritable = written.Documents, written.Visitors, written.Unwritable
		if err := plan.settle(ctx, tx, claimed, stamp); err != nil {
			return err
		}
		if err := notifyIDs(ctx, tx, notified(plan.claimedVisitors, written.Visitors)); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			s.beforeCommit()
		}
		return nil
	})
	if err != nil {
		// Free the entries for the next refresh now rather than at the
		// lease's end (best effort: the lease frees them anyway).
		s.unclaim(claimed, stamp)
		return mapping.BatchResult{}, fmt.Errorf("refresh queued documents: %w", classify(err))
	}
	return res, nil
}

// claim claims at most limit queued changes, queued at least settle ago
// (claimQuery), in a transaction of its own, so that no batch waits for
// the refresh that follows. links
// are the distinct traceparents their batches left, at most
// mapping.MaxLinks.
//
// The claim is not cut short by ctx's cancellation (only bounded by
// claimTimeout): a claim whose commit reached Postgres while its caller
// saw the cancellation would keep its entries from every refresh for the
// lease, with no one left to free them. A cancelled caller fails at the
// refresh that follows, which frees them.
func (s *Store) claim(ctx context.Context, limit int, settle time.Duration) (claimed []queued, links []string, stamp time.Time, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	err = s.withTx(ctx, func(tx pgx.Tx) error {
		claimed, links = claimed[:0], links[:0]
		rows, err := tx.Query(ctx, claimQuery, limit, refreshLease, max(settle, 0))
		if err != nil {
			return err
		}
		var q queued
		var tp *string
		seen := map[string]bool{}
		_, err = pgx.ForEachRow(rows, []any{&q.kind, &q.id, &q.resume, &tp, &stamp}, func() error {
			claimed = append(claimed, q)
			if tp != nil && !seen[*tp] && len(links) < mapping.MaxLinks {
				seen[*tp] = true
				links = append(links, *tp)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("claim queued changes: %w", err)
	}
	return claimed, links, stamp, nil
}

// unclaim clears the claim of entries whose refresh failed.
func (s *Store) unclaim(claimed []queued, stamp time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kinds, ids := queuedKeys(claimed)
	_, _ = s.pool.Exec(ctx, `
UPDATE document_refreshes r SET claimed_until = NULL FROM unnest($1::text[], $2::text[]) AS c(kind, id)
WHERE r.subject_kind = c.kind AND r.subject_id = c.id AND r.claimed_until = $3`, kinds, ids, stamp)
}

// queuedKeys returns the entries' kinds and ids, in key order (changeKeys).
func queuedKeys(qs []queued) (kinds, ids []string) {
	cs := make([]change, len(qs))
	for i, q := range qs {
		cs[i] = q.change
	}
	return changeKeys(cs)
}

// tryRefresh rebuilds, in tx, the documents of what st changed, as a
// refresh would once tx committed (TryBatch).
func (s *Store) tryRefresh(ctx context.Context, tx pgx.Tx, st *mapping.State, m *mapping.Materializer) error {
	changes := changesOf(st)
	claimed := make([]queued, len(changes))
	for i, c := range changes {
		claimed[i] = queued{change: c}
	}
	plan, err := s.planRefresh(ctx, tx, claimed, s.now(), m.TTL)
	if err != nil {
		return err
	}
	_, err = s.rebuild(ctx, tx, plan.visitors, m, "")
	return err
}

// queued is a claimed document_refreshes entry.
type queued struct {
	change
	resume *string
}

// refreshPlan is what one refresh transaction rebuilds and how it leaves
// the entries it claimed.
type refreshPlan struct {
	// visitors are the live visitors to rebuild, sorted.
	visitors []string
	// claimedVisitors are the claimed visitor entries (live or not).
	claimedVisitors []string
	// done are the entries worked off; resume the one paged expansion left
	// unfinished, with where it stopped. Claimed entries in neither stay
	// queued, untouched.
	done   []change
	resume *queuedResume
}

type queuedResume struct {
	change
	after string
}

// planRefresh expands the claimed entries to the live visitors to rebuild
// at now (conversations younger than ttl, unexpired documents), at most
// FanOutLimit beyond the claimed visitors themselves.
func (s *Store) planRefresh(ctx context.Context, tx pgx.Tx, claimed []queued, now time.Time, ttl time.Duration) (refreshPlan, error) {
	var p refreshPlan
	var kinds, ids []string
	var resumes []*string
	for _, q := range claimed {
		if q.kind == changedVisitor || q.kind == recheckVisitor {
			p.claimedVisitors = append(p.claimedVisitors, q.id)
			p.done = append(p.done, q.change)
			continue
		}
		kind := q.kind
		if kind == recheckUser {
			kind = changedUser
		}
		kinds, ids, resumes = append(kinds, kind), append(ids, q.id), append(resumes, q.resume)
	}
	set := map[string]bool{}
	if len(p.claimedVisitors) > 0 {
		rows, err := tx.Query(ctx, liveQuery, p.claimedVisitors, now.Add(-ttl))
		if err != nil {
			return p, fmt.Errorf("find live visitors: %w", err)
		}
		live, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return p, fmt.Errorf("find live visitors: %w", err)
		}
		for _, v := range live {
			set[v] = true
		}
	}
	if len(kinds) > 0 {
		budget := s.fanOutLimit
		rows, err := tx.Query(ctx, expandQuery, kinds, ids, resumes, now, budget+1, now.Add(-ttl))
		if err != nil {
			return p, fmt.Errorf("expand queued users and groups: %w", err)
		}
		members := make([][]string, len(kinds))
		var ord int64
		var v string
		if _, err := pgx.ForEachRow(rows, []any{&ord, &v}, func() error {
			members[ord-1] = append(members[ord-1], v)
			return nil
		}); err != nil {
			return p, fmt.Errorf("expand queued users and groups: %w", err)
		}
		// In claim order, while the budget lasts; the first expansion that
		// does not fit is paged, the ones after it wait untouched.
		for i, vs := range members {
			c := change{kinds[i], ids[i]}
			if len(vs) <= budget {
				for _, v := range vs {
					set[v] = true
				}
				budget -= len(vs)
				p.done = append(p.done, c)
				continue
			}
			if budget > 0 {
				for _, v := range vs[:budget] {
					set[v] = true
				}
				p.resume = &queuedResume{c, vs[budget-1]}
			}
			break
		}
	}
	p.visitors = setKeys(set)
	return p, nil
}

// settle ends the claim of the entries: those worked off are deleted,
// the paged expansion records where it resumes, the others are freed; each
// only while the claim is still stamp (an entry a batch re-armed meanwhile
// stays queued, to be refreshed again). Rows are locked in key order first,
// the order in which batches queue them.
func (p refreshPlan) settle(ctx context.Context, tx pgx.Tx, claimed []queued, stamp time.Time) error {
	kinds, ids := queuedKeys(claimed)
	if _, err := tx.Exec(ctx, `
SELECT 1 FROM document_refreshes r JOIN unnest($1::text[], $2::text[]) AS c(kind, id)
    ON r.subject_kind = c.kind AND r.subject_id = c.id
WHERE r.claimed_until = $3 ORDER BY r.subject_kind, r.subject_id FOR UPDATE OF r`, kinds, ids, stamp); err != nil {
		return fmt.Errorf("lock refreshed changes: %w", err)
	}
	doneKinds, doneIDs := changeKeys(p.done)
	if _, err := tx.Exec(ctx, `
DELETE FROM document_refreshes r USING unnest($1::text[], $2::text[]) AS d(kind, id)
WHERE r.subject_kind = d.kind AND r.subject_id = d.id AND r.claimed_until = $3`, doneKinds, doneIDs, stamp); err != nil {
		return fmt.Errorf("delete refreshed changes: %w", err)
	}
	if p.resume != nil {
		if _, err := tx.Exec(ctx, `UPDATE document_refreshes SET resume_after = $3 WHERE subject_kind = $1 AND subject_id = $2 AND claimed_until = $4`,
			p.resume.kind, p.resume.id, p.resume.after, stamp); err != nil {
			return fmt.Errorf("page the refresh of a %s: %w", p.resume.kind, err)
		}
	}
	if _, err := tx.Exec(ctx, `
UPDATE document_refreshes r SET claimed_until = NULL FROM unnest($1::text[], $2::text[]) AS c(kind, id)
WHERE r.subject_kind = c.kind AND r.subject_id = c.id AND r.claimed_until = $3`, kinds, ids, stamp); err != nil {
		return fmt.Errorf("free unrefreshed changes: %w", err)
	}
	return nil
}

// rebuild locks the visitors' documents (lockQuery), rebuilds them and
// writes those that changed (writeDocuments). A placeholder it did not
// overwrite (a conversation that expired meanwhile, a document it could not
// encode) is deleted. The documents written carry trace (RefreshQueued).
func (s *Store) rebuild(ctx context.Context, tx pgx.Tx, visitors []string, m *mapping.Materializer, trace string) (mapping.BatchResult, error) {
	if len(visitors) == 0 {
		return mapping.BatchResult{}, nil
	}
	rows, err := tx.Query(ctx, lockQuery, visitors)
	if err != nil {
		return mapping.BatchResult{}, fmt.Errorf("lock documents: %w", err)
	}
	placeholders, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return mapping.BatchResult{}, fmt.Errorf("lock documents: %w", err)
	}
	res, err := s.writeDocuments(ctx, tx, visitors, m, trace)
	if err != nil {
		return mapping.BatchResult{}, err
	}
	wrote := make(map[string]bool, len(res.Visitors))
	for _, v := range res.Visitors {
		wrote[v] = true
	}
	if left := slices.DeleteFunc(placeholders, func(v string) bool { return wrote[v] }); len(left) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM prechat_documents WHERE anonymous_id = ANY($1) AND expires_at = '-infinity'`, left); err != nil {
			return mapping.BatchResult{}, fmt.Errorf("delete document placeholders: %w", err)
		}
	}
	return res, nil
}

// notified lists, once each, the claimed visitors and the visitors whose
// documents were written.
func notified(claimed, written []string) []string {
	ids := slices.Concat(claimed, written)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// RefreshBacklog returns how many changes wait in the refresh queue, due
// now (a recheck not due yet is not counted): zero once every document
// shows every committed batch.
func (s *Store) RefreshBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM document_refreshes WHERE queued_at <= now()`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count queued document refreshes: %w", err)
	}
	return n, nil
}

// RefreshDelay returns how long the oldest change in the refresh queue has
// waited (zero when the queue is empty): how far documents are behind the
// committed batches.
func (s *Store) RefreshDelay(ctx context.Context) (time.Duration, error) {
	var age time.Duration
	err := s.pool.QueryRow(ctx, `SELECT coalesce(now() - min(queued_at), '0')::interval FROM document_refreshes WHERE queued_at <= now()`).Scan(&age)
	if err != nil {
		return 0, fmt.Errorf("read the refresh queue's oldest change: %w", err)
	}
	return max(age, 0), nil
}
