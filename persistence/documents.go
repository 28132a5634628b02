package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// visitorRowsQuery reads, in one round trip and through the primary keys,
// everything the documents of the visitors in $1 are built from: their
// conversation starts, links, memberships (theirs and their verified
// users') and the traits of the visitors, their verified users, the shared
// profiles of their users' groups and their own views of their groups.
// Columns: row kind, then three keys whose meaning depends on it (link:
// anonymousId, userId, "verified" or ""; membership: member kind, member id,
// groupId; traits: subject kind, subject id, observer), a JSON value, and
// the stamp; and the stored documents' shared profiles (document: anonymousId,
// user_id, group_id, and "placeholder" in the messageId column for a
// placeholder).
const visitorRowsQuery = `
WITH a AS (SELECT DISTINCT unnest($1::text[]) AS id),
l AS (
    SELECT il.anonymous_id, il.user_id, il.event_time, il.message_id, il.verified
    FROM a JOIN identity_links il ON il.anonymous_id = a.id
),
u AS (SELECT DISTINCT user_id AS id FROM l WHERE verified),
m AS (
    SELECT gm.member_kind, gm.member_id, gm.group_id, gm.event_time, gm.message_id
    FROM a JOIN group_memberships gm ON gm.member_kind = 'anonymous' AND gm.member_id = a.id
    UNION ALL
    SELECT gm.member_kind, gm.member_id, gm.group_id, gm.event_time, gm.message_id
    FROM u JOIN group_memberships gm ON gm.member_kind = 'user' AND gm.member_id = u.id
),
s AS (
    SELECT 'anonymous' AS kind, id, '' AS observer FROM a
    UNION ALL SELECT 'user', id, '' FROM u
    UNION ALL SELECT DISTINCT 'group', group_id, '' FROM m WHERE member_kind = 'user'
    UNION ALL SELECT 'group', group_id, member_id FROM m WHERE member_kind = 'anonymous'
)
SELECT 'conversation', c.anonymous_id, c.token_hash, '', c.properties, c.event_time, c.message_id
FROM a JOIN conversations c ON c.anonymous_id = a.id
UNION ALL
SELECT 'link', anonymous_id, user_id, CASE WHEN verified THEN 'verified' ELSE '' END, NULL, event_time, message_id FROM l
UNION ALL
SELECT 'membership', member_kind, member_id, group_id, NULL, event_time, message_id FROM m
UNION ALL
SELECT 'traits', t.subject_kind, t.subject_id, t.observer, t.traits, NULL, NULL
FROM s JOIN traits t ON t.subject_kind = s.kind AND t.subject_id = s.id AND t.observer = s.observer
UNION ALL
SELECT 'document', d.anonymous_id, coalesce(d.user_id, ''), coalesce(d.group_id, ''), NULL, NULL,
       CASE WHEN d.expires_at = '-infinity' THEN 'placeholder' ELSE '' END
FROM a JOIN prechat_documents d ON d.anonymous_id = a.id`

// storedShares are the shared profiles a stored document is built from
// (prechat_documents.user_id and group_id, "" for NULL), and whether it is
// a placeholder (lockQuery).
type storedShares struct {
	user, group string
	placeholder bool
}

// loadState reads everything the documents of these visitors are built
// from into a mapping.State, so that the stored state resolves visitors
// with exactly the rule the model uses (mapping.State.Visitor), and the
// shared profiles their stored documents were built from.
func loadState(ctx context.Context, tx pgx.Tx, anons []string) (*mapping.State, map[string]storedShares, error) {
	rows, err := tx.Query(ctx, visitorRowsQuery, anons)
	if err != nil {
		return nil, nil, fmt.Errorf("load visitors: %w", err)
	}
	st := mapping.NewState()
	stored := make(map[string]storedShares, len(anons))
	var (
		kind, a, b, c string
		value         []byte
		at            *time.Time
		msg           *string
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &a, &b, &c, &value, &at, &msg}, func() error {
		var s mapping.Stamp
		if at != nil && msg != nil {
			s = mapping.Stamp{At: at.UTC(), MessageID: *msg}
		}
		switch kind {
		case "document":
			stored[a] = storedShares{user: b, group: c, placeholder: msg != nil && *msg == "placeholder"}
		case "conversation":
			var props mapping.Object
			if err := json.Unmarshal(value, &props); err != nil {
				return fmt.Errorf("conversation of %s: %w", mapping.LogID(a), err)
			}
			st.Conversations[a] = mapping.Conversation{Stamp: s, Properties: props, TokenHash: b}
		case "link":
			st.Links[mapping.Link{AnonymousID: a, UserID: b}] = mapping.LinkState{Stamp: s, Verified: c == "verified"}
		case "membership":
			st.Memberships[mapping.Membership{Member: mapping.Subject{Kind: mapping.Kind(a), ID: b}, GroupID: c}] = s
		case "traits":
			traits, err := decodeTraits(value)
			if err != nil {
				return fmt.Errorf("traits of %s %s: %w", a, mapping.LogID(b), err)
			}
			st.Traits[mapping.Subject{Kind: mapping.Kind(a), ID: b, Observer: c}] = traits
		}
		value = nil
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load visitors: %w", err)
	}
	return st, stored, nil
}

// writeDocuments rebuilds the visitors' documents and writes those that
// changed, RefreshChunk visitors at a time: a change to a user or group with
// very many live documents holds one chunk of states and documents in
// memory, and sends statements of one chunk, however many it refreshes.
// The documents written carry trace ("": NULL).
func (s *Store) writeDocuments(ctx context.Context, tx pgx.Tx, anons []string, m *mapping.Materializer, trace string) (mapping.BatchResult, error) {
	var res mapping.BatchResult
	for chunk := range slices.Chunk(anons, s.refreshChunk) {
		r, err := s.writeDocumentChunk(ctx, tx, chunk, m, trace)
		if err != nil {
			return mapping.BatchResult{}, err
		}
		res.Documents += r.Documents
		res.Visitors = append(res.Visitors, r.Visitors...)
		res.Unwritable = append(res.Unwritable, r.Unwritable...)
	}
	return res, nil
}

// writeDocumentChunk rebuilds and writes the documents of some visitors.
// A visitor whose first document it writes, or whose document it now
// builds from other shared profiles, is queued for a recheck (migration
// 010).
func (s *Store) writeDocumentChunk(ctx context.Context, tx pgx.Tx, anons []string, m *mapping.Materializer, trace string) (mapping.BatchResult, error) {
	st, stored, err := loadState(ctx, tx, anons)
	if err != nil {
		return mapping.BatchResult{}, err
	}
	visitors, err := lockNewGroups(ctx, tx, st.Visitors(anons), stored)
	if err != nil {
		return mapping.BatchResult{}, err
	}
	var rows documentRows
	var unwritable []string
	moved := map[string]bool{}
	for _, v := range visitors {
		doc := m.Document(v)
		raw, err := json.Marshal(doc)
		if err != nil {
			// Only a time past the year 9999 fails here (event times are
			// bounded by the admission window, so only a batch applied
			// around it has one): the visitor is reported, the others are
			// written; the queue must not stall on one visitor.
			unwritable = append(unwritable, v.AnonymousID)
			continue
		}
		rows.add(v, raw, doc.ExpiresAt)
		user, group := v.Shares()
		if old := stored[v.AnonymousID]; old.placeholder || old.user != user || old.group != group {
			moved[v.AnonymousID] = true
		}
	}
	var tp *string
	if trace != "" {
		tp = &trace
	}
	written, refused, err := upsertDocuments(ctx, tx, rows, tp)
	if err != nil {
		return mapping.BatchResult{}, err
	}
	if err := s.queueRechecks(ctx, tx, slices.DeleteFunc(slices.Clone(written), func(v string) bool { return !moved[v] }), tp); err != nil {
		return mapping.BatchResult{}, err
	}
	return mapping.BatchResult{Documents: len(written), Visitors: written, Unwritable: append(unwritable, refused...)}, nil
}

// maxGroupRereads bounds how often lockNewGroups reads visitors again.
const maxGroupRereads = 3

// lockNewGroups takes a shared group lock (groupLocks) on each group a
// document is about to be built from that its stored document was not,
// then reads those visitors again: a batch changing such a group either
// committed before (its change is read now) or waits for this transaction
// (and then queues the group, these documents showing it). A visitor read
// again may show yet another group; it is locked in turn, a few times at
// most (the visitor's recheck covers what is left).
func lockNewGroups(ctx context.Context, tx pgx.Tx, visitors []mapping.Visitor, stored map[string]storedShares) ([]mapping.Visitor, error) {
	locked := map[string]bool{}
	for range maxGroupRereads {
		var again []string
		newGroups := map[string]bool{}
		at := map[string]int{}
		for i, v := range visitors {
			if _, g := v.Shares(); g != "" && g != stored[v.AnonymousID].group && !locked[g] {
				newGroups[g] = true
				at[v.AnonymousID] = i
				again = append(again, v.AnonymousID)
			}
		}
		if len(newGroups) == 0 {
			return visitors, nil
		}
		groups := setKeys(newGroups)
		lock := groupLocks(groups, true)
		if _, err := tx.Exec(ctx, lock.sql, lock.args...); err != nil {
			return nil, fmt.Errorf("lock %d groups: %w", len(groups), err)
		}
		for _, g := range groups {
			locked[g] = true
		}
		st, _, err := loadState(ctx, tx, again)
		if err != nil {
			return nil, err
		}
		visitors = slices.Clone(visitors)
		for _, v := range st.Visitors(again) {
			visitors[at[v.AnonymousID]] = v
		}
	}
	return visitors, nil
}

// queueRechecks queues a recheck of these visitors, due RecheckDelay from
// now (a recheck already queued moves later), with the refresh's
// traceparent. It clears a claim, so that a refresh working off the
// visitor's previous recheck leaves this one queued.
func (s *Store) queueRechecks(ctx context.Context, tx pgx.Tx, anons []string, trace *string) error {
	if len(anons) == 0 {
		return nil
	}
	slices.Sort(anons)
	_, err := tx.Exec(ctx, `
INSERT INTO document_refreshes AS r (subject_kind, subject_id, traceparent, queued_at)
SELECT 'recheck', i, $3::text, now() + $2::interval FROM unnest($1::text[]) AS i
ON CONFLICT (subject_kind, subject_id) DO UPDATE
SET queued_at = greatest(r.queued_at, excluded.queued_at), claimed_until = NULL, traceparent = coalesce(excluded.traceparent, r.traceparent)`,
		anons, s.recheckDelay, trace)
	if err != nil {
		return fmt.Errorf("queue rechecks of %d documents: %w", len(anons), err)
	}
	return nil
}

// documentRows are documents to write, a column each.
type documentRows struct {
	ids, tokens   []string
	docs          [][]byte
	expires       []time.Time
	users, groups []*string
}

func (r *documentRows) add(v mapping.Visitor, doc []byte, expires time.Time) {
	orNull := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	r.ids, r.docs, r.expires = append(r.ids, v.AnonymousID), append(r.docs, doc), append(r.expires, expires)
	r.tokens = append(r.tokens, v.Conversation.TokenHash)
	user, group := v.Shares()
	r.users, r.groups = append(r.users, orNull(user)), append(r.groups, orNull(group))
}

// slice returns the rows from i to j.
func (r documentRows) slice(i, j int) documentRows {
	return documentRows{ids: r.ids[i:j], tokens: r.tokens[i:j], docs: r.docs[i:j], expires: r.expires[i:j], users: r.users[i:j], groups: r.groups[i:j]}
}

// upsertDocumentsQuery writes documents, those that changed only (their
// JSON, secret or shared profiles), with the writing refresh's traceparent
// ($7, one for all).
const upsertDocumentsQuery = `
INSERT INTO prechat_documents AS d (anonymous_id, document, expires_at, token_hash, user_id, group_id, traceparent)
SELECT u.*, $7::text FROM unnest($1::text[], $2::json[], $3::timestamptz[], $4::text[], $5::text[], $6::text[]) AS u
ON CONFLICT (anonymous_id) DO UPDATE
SET document = excluded.document, expires_at = excluded.expires_at, token_hash = excluded.token_hash,
    user_id = excluded.user_id, group_id = excluded.group_id, written_at = now(), traceparent = excluded.traceparent
WHERE d.document::text IS DISTINCT FROM excluded.document::text OR d.token_hash IS DISTINCT FROM excluded.token_hash
   OR d.user_id IS DISTINCT FROM excluded.user_id OR d.group_id IS DISTINCT FROM excluded.group_id
RETURNING anonymous_id`

// upsertDocuments writes the documents that changed, under a savepoint:
// when Postgres refuses the statement's content (classify), the halves are
// written apart, down to the single documents it refuses, which are
// returned as refused and left as they were. Refreshes apply no event, so
// nothing can be dead-lettered for such a refusal; it must not stall the
// refresh queue either.
func upsertDocuments(ctx context.Context, tx pgx.Tx, r documentRows, trace *string) (written, refused []string, err error) {
	if len(r.ids) == 0 {
		return nil, nil, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("write documents: %w", err)
	}
	rows, err := sp.Query(ctx, upsertDocumentsQuery, r.ids, r.docs, r.expires, r.tokens, r.users, r.groups, trace)
	if err == nil {
		written, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err == nil {
		if err = sp.Commit(ctx); err == nil {
			return written, nil, nil
		}
	}
	if rbErr := sp.Rollback(ctx); rbErr != nil || !errors.Is(classify(err), ErrRejected) {
		return nil, nil, fmt.Errorf("write documents: %w", err)
	}
	if len(r.ids) == 1 {
		return nil, r.ids, nil
	}
	h := len(r.ids) / 2
	w1, r1, err := upsertDocuments(ctx, tx, r.slice(0, h), trace)
	if err != nil {
		return nil, nil, err
	}
	w2, r2, err := upsertDocuments(ctx, tx, r.slice(h, len(r.ids)), trace)
	if err != nil {
		return nil, nil, err
	}
	return append(w1, w2...), append(r1, r2...), nil
}

// DocumentGet returns the stored, unexpired document of a visitor as the
// JSON the API serves, with the hash of its conversation secret (lowercase
// hex SHA-256; "" when the conversation start carried none), or ErrNotFound.
func (s *Store) DocumentGet(ctx context.Context, anonymousID string) (doc []byte, tokenHash string, err error) {
	doc, tokenHash, _, err = s.DocumentRead(ctx, anonymousID)
	return doc, tokenHash, err
}

// DocumentRead is DocumentGet that also returns the W3C traceparent of the
// refresh that wrote the document ("" when it was not traced), which is not
// part of the served JSON: the API links its fetch span to it.
func (s *Store) DocumentRead(ctx context.Context, anonymousID string) (doc []byte, tokenHash, traceparent string, err error) {
	var tp *string
	err = s.pool.QueryRow(ctx, `SELECT document::text, token_hash, traceparent FROM prechat_documents WHERE anonymous_id = $1 AND expires_at > $2`,
		anonymousID, s.now()).Scan(&doc, &tokenHash, &tp)
	if err != nil {
		return nil, "", "", fmt.Errorf("get document of %s: %w", mapping.LogID(anonymousID), interpret(err))
	}
	if tp != nil {
		traceparent = *tp
	}
	return doc, tokenHash, traceparent, nil
}

func setKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
