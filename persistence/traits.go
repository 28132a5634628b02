package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// Trait rows are merged in Go: a batch reads the stored rows of the
// subjects it changes (no lock), merges its traits into them by the
// last-writer-wins rule, and writes only the rows that changed, each on
// condition that its version is still the one read (optimistic
// concurrency, migration 011). A row another transaction changed
// meanwhile is locked by that failed write and merged by Postgres
// instead (prechat_merge_traits), in a statement after the batch's.
// Merging in SQL cost two SQL-function calls per row, the costliest
// statement of a batch.

// storedTraits is a traits row as read: its traits and version.
type storedTraits struct {
	traits  mapping.Traits
	version int64
}

// storedTraitsQuery reads the traits rows of the subjects in $1, $2, $3
// (kind, id, observer).
const storedTraitsQuery = `
SELECT t.subject_kind, t.subject_id, t.observer, t.traits, t.version
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(kind, id, observer)
JOIN traits t ON t.subject_kind = u.kind AND t.subject_id = u.id AND t.observer = u.observer`

// readStoredTraits turns off JIT compilation for the transaction (see
// effectsOf) and reads the stored traits of every subject st changes, in
// one round trip.
func readStoredTraits(ctx context.Context, tx pgx.Tx, st *mapping.State) (map[mapping.Subject]storedTraits, error) {
	var b pgx.Batch
	// The batch's statements are short and bounded by the batch size: JIT
	// compilation never pays for itself on them, and on tables not yet
	// analysed (a new deployment, a replay into an empty database) inflated
	// estimates made Postgres compile them for ~100 ms per batch. SET LOCAL,
	// not a connection parameter, so that poolers such as PgBouncer accept it.
	b.Queue(`SET LOCAL jit = off`)
	stored := make(map[mapping.Subject]storedTraits, len(st.Traits))
	if len(st.Traits) > 0 {
		n := len(st.Traits)
		kinds, ids, observers := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		for sub := range st.Traits {
			kinds, ids, observers = append(kinds, string(sub.Kind)), append(ids, sub.ID), append(observers, sub.Observer)
		}
		var kind, id, observer string
		var raw []byte
		var version int64
		b.Queue(storedTraitsQuery, kinds, ids, observers).Query(func(rows pgx.Rows) error {
			_, err := pgx.ForEachRow(rows, []any{&kind, &id, &observer, &raw, &version}, func() error {
				t, err := decodeTraits(raw)
				if err != nil {
					return fmt.Errorf("traits of %s %s: %w", kind, mapping.LogID(id), err)
				}
				stored[mapping.Subject{Kind: mapping.Kind(kind), ID: id, Observer: observer}] = storedTraits{t, version}
				return nil
			})
			return err
		})
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("read stored traits: %w", err)
	}
	return stored, nil
}

// mergeStored merges incoming into the stored traits, key by key, the
// later stamp winning (the rule of prechat_stamp_after), and reports
// whether anything changed.
func mergeStored(stored, incoming mapping.Traits) (mapping.Traits, bool) {
	var merged mapping.Traits
	for k, v := range incoming {
		if cur, ok := stored[k]; ok && !v.Stamp.After(cur.Stamp) {
			continue
		}
		if merged == nil {
			merged = make(mapping.Traits, len(stored)+len(incoming))
			for sk, sv := range stored {
				merged[sk] = sv
			}
		}
		merged[k] = v
	}
	return merged, merged != nil
}

// casTraitsQuery writes merged trait rows: a new row (version 1) or the
// next version of the row read ($5, the version written). A row whose
// version moved on, or that another transaction inserted, is locked and
// left as it was (ON CONFLICT … WHERE false): it is not returned.
const casTraitsQuery = `
INSERT INTO traits AS t (subject_kind, subject_id, observer, traits, version)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[])
ON CONFLICT (subject_kind, subject_id, observer) DO UPDATE
SET traits = excluded.traits, version = excluded.version
WHERE t.version = excluded.version - 1
RETURNING t.subject_kind, t.subject_id, t.observer`

// mergeTraitsQuery merges trait rows in Postgres, for the rows the
// optimistic write missed (already locked by it).
const mergeTraitsQuery = `
INSERT INTO traits AS t (subject_kind, subject_id, observer, traits, version)
SELECT k, i, o, tr, 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS u(k, i, o, tr)
ON CONFLICT (subject_kind, subject_id, observer) DO UPDATE
SET traits = prechat_merge_traits(t.traits, excluded.traits), version = t.version + 1
WHERE prechat_traits_change(t.traits, excluded.traits)`

// traitWrites is the write of some subjects' traits: the merged rows to
// write optimistically, and each one's incoming traits for the merge in
// Postgres should it miss.
type traitWrites struct {
	kinds, ids, observers []string
	merged, incoming      [][]byte
	versions              []int64
}

// queueTraits queues the optimistic write of these subjects' merged traits
// (in the order given: sorted), leaving out those the batch does not
// change; missed collects the subjects Postgres must merge instead.
func queueTraits(batch *statements, st *mapping.State, subjects []mapping.Subject, stored map[mapping.Subject]storedTraits, missed *traitWrites) error {
	var w traitWrites
	for _, sub := range subjects {
		cur := stored[sub]
		merged, changed := mergeStored(cur.traits, st.Traits[sub])
		if !changed {
			continue
		}
		raw, err := encodeTraits(merged)
		if err != nil {
			return fmt.Errorf("encode traits of %s %s: %w", sub.Kind, mapping.LogID(sub.ID), err)
		}
		in, err := encodeTraits(st.Traits[sub])
		if err != nil {
			return fmt.Errorf("encode traits of %s %s: %w", sub.Kind, mapping.LogID(sub.ID), err)
		}
		w.kinds, w.ids, w.observers = append(w.kinds, string(sub.Kind)), append(w.ids, sub.ID), append(w.observers, sub.Observer)
		w.merged, w.incoming, w.versions = append(w.merged, raw), append(w.incoming, in), append(w.versions, cur.version+1)
	}
	if len(w.kinds) == 0 {
		return nil
	}
	*batch = append(*batch, statement{sql: casTraitsQuery, args: []any{w.kinds, w.ids, w.observers, w.merged, w.versions},
		collect: func(rows pgx.Rows) error {
			written := make(map[mapping.Subject]bool, len(w.kinds))
			var kind, id, observer string
			if _, err := pgx.ForEachRow(rows, []any{&kind, &id, &observer}, func() error {
				written[mapping.Subject{Kind: mapping.Kind(kind), ID: id, Observer: observer}] = true
				return nil
			}); err != nil {
				return err
			}
			for i := range w.kinds {
				if !written[mapping.Subject{Kind: mapping.Kind(w.kinds[i]), ID: w.ids[i], Observer: w.observers[i]}] {
					missed.kinds, missed.ids, missed.observers = append(missed.kinds, w.kinds[i]), append(missed.ids, w.ids[i]), append(missed.observers, w.observers[i])
					missed.incoming = append(missed.incoming, w.incoming[i])
				}
			}
			return nil
		}})
	return nil
}

// mergeMissed merges in Postgres the rows the optimistic writes missed.
func mergeMissed(ctx context.Context, tx pgx.Tx, missed *traitWrites) error {
	if len(missed.kinds) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, mergeTraitsQuery, missed.kinds, missed.ids, missed.observers, missed.incoming); err != nil {
		return fmt.Errorf("merge %d trait rows changed meanwhile: %w", len(missed.kinds), err)
	}
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
