package persistence

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// ApplyBatch commits a pipeline batch in one transaction: its effects
// (traits, links, memberships, conversations), the applied messageIds, its
// dead letters, what it changed queued for a document refresh
// (document_refreshes: its visitors, and the users and groups whose shared
// rows it wrote), and the next offsets. Either all of it is committed or none
// of it; applying the same batch again writes nothing new.
//
// A batch does not rebuild documents: RefreshQueued does, after it commits,
// once per visitor however many batches changed it meanwhile. No lock is
// shared by all batches: concurrent batches (apply lanes, group members, a
// replay) wait for each other only on the rows both write, which every
// batch locks in the same order (its visitors' rows, then shared rows, then
// its queue entries, each sorted by key). The result's Queued counts the
// changes it offered the queue (queueChanges keeps those that can have a
// document).
//
// An error that retrying cannot change (the batch's content is refused by
// Postgres or cannot be encoded) wraps ErrRejected; see classify.
func (s *Store) ApplyBatch(ctx context.Context, b *mapping.Batch) (mapping.BatchResult, error) {
	return s.applyBatch(ctx, b, nil)
}

// TryBatch runs ApplyBatch's transaction for b, then rebuilds the documents
// of what it changed as RefreshQueued would, and rolls it all back, changing
// nothing: it returns the error ApplyBatch would return, wrapping
// ErrRejected when the batch's content is refused. The pipeline tries parts
// of a refused batch with it to find the messages responsible.
func (s *Store) TryBatch(ctx context.Context, b *mapping.Batch, m *mapping.Materializer) error {
	_, err := s.applyBatch(ctx, b, m)
	return err
}

// errTrial ends a TryBatch transaction, which rolls it back.
var errTrial = errors.New("trial transaction rolled back")

// applyBatch is ApplyBatch, or with trial TryBatch.
func (s *Store) applyBatch(ctx context.Context, b *mapping.Batch, trial *mapping.Materializer) (mapping.BatchResult, error) {
	// Encoded before the transaction begins: rows that other batches may be
	// waiting for are locked only while Postgres works.
	effects, queued, err := effectsOf(b)
	if err != nil {
		return mapping.BatchResult{}, fmt.Errorf("apply batch of %d messages: %w", b.Len(), classify(err))
	}
	var res mapping.BatchResult
	err = s.withTx(ctx, func(tx pgx.Tx) error {
		res = mapping.BatchResult{Queued: queued}
		if err := effects.send(ctx, tx); err != nil {
			return fmt.Errorf("write effects: %w", err)
		}
		if trial != nil {
			if err := s.tryRefresh(ctx, tx, b.State, trial); err != nil {
				return err
			}
			return errTrial
		}
		if s.beforeCommit != nil {
			s.beforeCommit()
		}
		return nil
	})
	if err != nil && !(trial != nil && errors.Is(err, errTrial)) {
		return mapping.BatchResult{}, fmt.Errorf("apply batch of %d messages: %w", b.Len(), classify(err))
	}
	return res, nil
}

// statement is an SQL statement with its encoded arguments.
type statement struct {
	sql  string
	args []any
}

// statements are sent together, in order, in one round trip.
type statements []statement

// Queue adds a statement.
func (s *statements) Queue(sql string, args ...any) { *s = append(*s, statement{sql, args}) }

// send sends the statements as one pgx.Batch. A new pgx.Batch each time: pgx
// remembers on a queued query the statement it was prepared as on one
// connection, and a retried transaction may run on another.
func (s statements) send(ctx context.Context, tx pgx.Tx) error {
	var b pgx.Batch
	for _, st := range s {
		b.Queue(st.sql, st.args...)
	}
	return tx.SendBatch(ctx, &b).Close()
}

// effectsOf encodes every upsert of the batch: the rows of its own visitors
// first, then the rows many visitors share, then its queue entries (see
// ApplyBatch). Rows are sorted by key so concurrent batches lock rows in the
// same order. queued is the number of queue entries.
func effectsOf(b *mapping.Batch) (_ statements, queued int, _ error) {
	st := b.State
	var batch, shared statements
	// The batch's statements are short and bounded by the batch size: JIT
	// compilation never pays for itself on them, and on tables not yet
	// analysed (a new deployment, a replay into an empty database) inflated
	// estimates made Postgres compile them for ~100 ms per batch. SET LOCAL,
	// not a connection parameter, so that poolers such as PgBouncer accept it.
	batch.Queue(`SET LOCAL jit = off`)

	subjects := sortedKeys(st.Traits, compareSubject)
	// A visitor's own rows (its traits, its view of a group) belong to the
	// visitor phase; shared profiles to the shared phase.
	own := func(s mapping.Subject) bool { return s.Kind == mapping.KindAnonymous || s.Observer != "" }
	visitors := slices.DeleteFunc(slices.Clone(subjects), func(s mapping.Subject) bool { return !own(s) })
	others := slices.DeleteFunc(subjects, own)
	if err := queueTraits(&batch, st, visitors); err != nil {
		return nil, 0, err
	}
	// Users' rows before groups': a group's row is shared by the most
	// batches (every member's), so it is locked last, for the shortest time.
	users := slices.DeleteFunc(slices.Clone(others), func(s mapping.Subject) bool { return s.Kind == mapping.KindGroup })
	groups := slices.DeleteFunc(others, func(s mapping.Subject) bool { return s.Kind != mapping.KindGroup })
	if err := queueTraits(&shared, st, users); err != nil {
		return nil, 0, err
	}

	var ln struct {
		anon, user, msg []string
		at              []time.Time
		verified        []bool
	}
	for _, l := range sortedKeys(st.Links, compareLink) {
		s := st.Links[l]
		ln.anon, ln.user, ln.at, ln.msg = append(ln.anon, l.AnonymousID), append(ln.user, l.UserID), append(ln.at, s.At), append(ln.msg, s.MessageID)
		ln.verified = append(ln.verified, s.Verified)
	}
	if len(ln.anon) > 0 {
		// The latest stamp wins; verified is the or of every write
		// (mapping.LinkState).
		batch.Queue(`
INSERT INTO identity_links AS l (anonymous_id, user_id, event_time, message_id, verified)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::boolean[])
ON CONFLICT (anonymous_id, user_id) DO UPDATE
SET event_time = CASE WHEN (l.event_time, l.message_id) < (excluded.event_time, excluded.message_id) THEN excluded.event_time ELSE l.event_time END,
    message_id = CASE WHEN (l.event_time, l.message_id) < (excluded.event_time, excluded.message_id) THEN excluded.message_id ELSE l.message_id END,
    verified = l.verified OR excluded.verified
WHERE (l.event_time, l.message_id) < (excluded.event_time, excluded.message_id)
   OR (excluded.verified AND NOT l.verified)`,
			ln.anon, ln.user, ln.at, ln.msg, ln.verified)
	}

	var ms struct {
		kind, id, group, msg []string
		at                   []time.Time
	}
	// Memberships: shared (a group's rows are written by all its members' batches).
	for _, m := range sortedKeys(st.Memberships, compareMembership) {
		s := st.Memberships[m]
		ms.kind, ms.id, ms.group = append(ms.kind, string(m.Member.Kind)), append(ms.id, m.Member.ID), append(ms.group, m.GroupID)
		ms.at, ms.msg = append(ms.at, s.At), append(ms.msg, s.MessageID)
	}
	if len(ms.kind) > 0 {
		shared.Queue(`
INSERT INTO group_memberships AS m (member_kind, member_id, group_id, event_time, message_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
ON CONFLICT (member_kind, member_id, group_id) DO UPDATE
SET event_time = excluded.event_time, message_id = excluded.message_id
WHERE (m.event_time, m.message_id) < (excluded.event_time, excluded.message_id)`,
			ms.kind, ms.id, ms.group, ms.at, ms.msg)
	}

	var cv struct {
		anon, msg, token []string
		at               []time.Time
		props            []any
	}
	for _, a := range sortedKeys(st.Conversations, cmp.Compare[string]) {
		c := st.Conversations[a]
		props := any(c.Properties)
		if c.Properties == nil {
			props = mapping.Object{}
		}
		cv.anon, cv.msg, cv.at, cv.props = append(cv.anon, a), append(cv.msg, c.MessageID), append(cv.at, c.At), append(cv.props, props)
		cv.token = append(cv.token, c.TokenHash)
	}
	if len(cv.anon) > 0 {
		batch.Queue(`
INSERT INTO conversations AS c (anonymous_id, message_id, event_time, properties, token_hash)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::text[])
ON CONFLICT (anonymous_id) DO UPDATE
SET message_id = excluded.message_id, event_time = excluded.event_time, properties = excluded.properties, token_hash = excluded.token_hash
WHERE (c.event_time, c.message_id) < (excluded.event_time, excluded.message_id)`,
			cv.anon, cv.msg, cv.at, cv.props, cv.token)
	}

	if len(b.Applied) > 0 {
		applied := slices.Clone(b.Applied)
		slices.SortFunc(applied, func(x, y mapping.Applied) int { return cmp.Compare(x.MessageID, y.MessageID) })
		ids, types, anons, users := make([]string, len(applied)), make([]string, len(applied)), make([]string, len(applied)), make([]string, len(applied))
		for i, a := range applied {
			ids[i], types[i], anons[i], users[i] = a.MessageID, string(a.Type), a.AnonymousID, a.UserID
		}
		batch.Queue(`
INSERT INTO applied_messages (message_id, event_type, anonymous_id, user_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT (message_id) DO NOTHING`, ids, types, anons, users)
	}

	if n := len(b.DeadLetters); n > 0 {
		topics, parts, offs, keys, raws, reasons, times := make([]string, n), make([]int32, n), make([]int64, n), make([][]byte, n), make([][]byte, n), make([]string, n), make([]time.Time, n)
		for i, d := range b.DeadLetters {
			topics[i], parts[i], offs[i], keys[i], raws[i], reasons[i], times[i] = d.Topic, int32(d.Partition), d.Offset, d.Key, d.Raw, d.Reason, d.Time
		}
		batch.Queue(`
INSERT INTO dead_letters (topic, "partition", "offset", message_key, raw, reason, failed_at)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::timestamptz[])
ON CONFLICT (topic, "partition", "offset") DO NOTHING`, topics, parts, offs, keys, raws, reasons, times)
	}

	if len(b.Suppressed) > 0 {
		ids := sortedKeys(b.Suppressed, cmp.Compare[string])
		counts := make([]int64, len(ids))
		for i, id := range ids {
			counts[i] = int64(b.Suppressed[id])
		}
		shared.Queue(`
UPDATE suppressions s SET dropped = s.dropped + u.n
FROM unnest($1::text[], $2::bigint[]) AS u(id, n) WHERE s.id = u.id`, ids, counts)
	}
	// The offsets (the lane's own rows) and the notifications before the
	// group phase: the rows all lanes and consumers write (see groupLocks),
	// locked last, for the shortest time, then the queue entries (locked
	// after them by every batch, see queueChanges).
	if notify, ok := notifyStatement(b); ok {
		shared = append(shared, notify)
	}
	if positions, ok := positionsStatement(b.Positions); ok {
		shared = append(shared, positions)
	}
	if len(groups) > 0 {
		ids := make([]string, len(groups))
		for i, g := range groups {
			ids[i] = g.ID
		}
		shared = append(shared, groupLocks(ids, false))
	}
	if err := queueTraits(&shared, st, groups); err != nil {
		return nil, 0, err
	}
	changes := changesOf(st)
	queueChanges(&shared, changes, b.Trace)
	return append(batch, shared...), len(changes), nil
}

// queueTraits queues the merge of these subjects' traits.
func queueTraits(batch *statements, st *mapping.State, subjects []mapping.Subject) error {
	if len(subjects) == 0 {
		return nil
	}
	n := len(subjects)
	kinds, ids, observers, traits := make([]string, n), make([]string, n), make([]string, n), make([][]byte, n)
	for i, sub := range subjects {
		raw, err := encodeTraits(st.Traits[sub])
		if err != nil {
			return fmt.Errorf("encode traits of %s %s: %w", sub.Kind, mapping.LogID(sub.ID), err)
		}
		kinds[i], ids[i], observers[i], traits[i] = string(sub.Kind), sub.ID, sub.Observer, raw
	}
	batch.Queue(`
INSERT INTO traits AS t (subject_kind, subject_id, observer, traits)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
ON CONFLICT (subject_kind, subject_id, observer) DO UPDATE
SET traits = prechat_merge_traits(t.traits, excluded.traits)
WHERE prechat_traits_change(t.traits, excluded.traits)`, kinds, ids, observers, traits)
	return nil
}

// storedTrait is a trait entry in the traits column (see the migration).
type storedTrait struct {
	V json.RawMessage `json:"v"`
	T int64           `json:"t"`
	M string          `json:"m"`
}

func encodeTraits(t mapping.Traits) ([]byte, error) {
	out := make(map[string]storedTrait, len(t))
	for k, v := range t {
		out[k] = storedTrait{V: v.Value, T: v.At.UnixMicro(), M: v.MessageID}
	}
	return json.Marshal(out)
}

func decodeTraits(raw []byte) (mapping.Traits, error) {
	var in map[string]storedTrait
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	out := make(mapping.Traits, len(in))
	for k, v := range in {
		out[k] = mapping.Trait{Value: v.V, Stamp: mapping.Stamp{At: time.UnixMicro(v.T).UTC(), MessageID: v.M}}
	}
	return out, nil
}

// positionsStatement writes the batch's next offsets (ok false: none).
func positionsStatement(ps []mapping.Position) (_ statement, ok bool) {
	if len(ps) == 0 {
		return statement{}, false
	}
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b mapping.Position) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	groups, topics, parts, next := make([]string, len(ps)), make([]string, len(ps)), make([]int32, len(ps)), make([]int64, len(ps))
	for i, p := range ps {
		groups[i], topics[i], parts[i], next[i] = p.Group, p.Topic, int32(p.Partition), p.NextOffset
	}
	return statement{sql: `
INSERT INTO kafka_offsets AS o (consumer_group, topic, "partition", next_offset)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
ON CONFLICT (consumer_group, topic, "partition") DO UPDATE
SET next_offset = excluded.next_offset, updated_at = now()
WHERE o.next_offset < excluded.next_offset`, args: []any{groups, topics, parts, next}}, true
}

func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

func compareSubject(a, b mapping.Subject) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Observer, b.Observer))
}

func compareLink(a, b mapping.Link) int {
	return cmp.Or(cmp.Compare(a.AnonymousID, b.AnonymousID), cmp.Compare(a.UserID, b.UserID))
}

func compareMembership(a, b mapping.Membership) int {
	return cmp.Or(compareSubject(a.Member, b.Member), cmp.Compare(a.GroupID, b.GroupID))
}
