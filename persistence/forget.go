package persistence

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// ForgetReport says what Forget deleted.
type ForgetReport struct {
	// AnonymousIDs and UserIDs are the ids forgotten: the one asked for and
	// every id linked to it.
	AnonymousIDs, UserIDs []string
	// Deleted counts the rows deleted per table.
	Deleted map[string]int64
}

// Forget deletes everything held about a person — traits, identity links,
// memberships, conversation starts, documents and applied-message records of
// the id and of every id verifiably linked to it — redacts the raw bytes of
// the dead letters that name any of those ids, and suppresses all those ids,
// so that later events naming them are dropped until Lift.
//
// Only verified links are followed (see docs/trust-model.md): anyone
// can claim a userId from their own browser, and forgetting that user must
// not delete, or suppress, the claimant's unrelated visitor. The link rows
// naming the id are deleted whether verified or not. Groups' shared traits
// are kept: they describe the group, not the person; a forgotten visitor's
// own view of its groups is deleted.
func (s *Store) Forget(ctx context.Context, kind mapping.Kind, id string) (ForgetReport, error) {
	if kind != mapping.KindUser && kind != mapping.KindAnonymous {
		return ForgetReport{}, fmt.Errorf("forget: kind must be user or anonymous, not %q", kind)
	}
	if id == "" {
		return ForgetReport{}, errors.New("forget: the id is empty")
	}
	var rep ForgetReport
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		// A refresh of one of these visitors holds its prechat_documents
		// row: the delete below waits for it to commit, and one that starts
		// later finds no conversation (see migration 008).
		anons, users, err := linkedIDs(ctx, tx, kind, id)
		if err != nil {
			return err
		}
		rep = ForgetReport{AnonymousIDs: anons, UserIDs: users, Deleted: map[string]int64{}}
		both := []any{anons, users}
		deletes := []struct {
			table, sql string
			args       []any
		}{
			{"traits", `DELETE FROM traits WHERE (subject_kind = 'anonymous' AND subject_id = ANY($1)) OR (subject_kind = 'user' AND subject_id = ANY($2)) OR observer = ANY($1)`, both},
			{"identity_links", `DELETE FROM identity_links WHERE anonymous_id = ANY($1) OR user_id = ANY($2)`, both},
			{"group_memberships", `DELETE FROM group_memberships WHERE (member_kind = 'anonymous' AND member_id = ANY($1)) OR (member_kind = 'user' AND member_id = ANY($2))`, both},
			{"conversations", `DELETE FROM conversations WHERE anonymous_id = ANY($1)`, both[:1]},
			{"prechat_documents", `DELETE FROM prechat_documents WHERE anonymous_id = ANY($1)`, both[:1]},
			{"document_refreshes", `DELETE FROM document_refreshes WHERE (subject_kind IN ('anonymous', 'recheck') AND subject_id = ANY($1)) OR (subject_kind IN ('user', 'recheck_user') AND subject_id = ANY($2))`, both},
			{"applied_messages", `DELETE FROM applied_messages WHERE anonymous_id = ANY($1) OR user_id = ANY($2)`, both},
			// A dead letter is not a valid event, so it is matched on its
			// bytes: its key, or the id as a JSON string anywhere in it.
			// Matching more than the person's own messages only redacts
			// more.
			{"dead_letters", `
UPDATE dead_letters d SET raw = ''::bytea, message_key = NULL,
    reason = d.reason || ' [raw message redacted by processor forget]'
FROM (SELECT unnest($1::text[] || $2::text[]) AS id) f
WHERE d.raw <> ''::bytea AND (d.message_key = convert_to(f.id, 'UTF8')
    OR position(convert_to(to_json(f.id)::text, 'UTF8') IN d.raw) > 0)`, both},
		}
		for _, d := range deletes {
			tag, err := tx.Exec(ctx, d.sql, d.args...)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", d.table, err)
			}
			rep.Deleted[d.table] = tag.RowsAffected()
		}
		_, err = tx.Exec(ctx, `
INSERT INTO suppressions (id, kind, forgotten_as)
SELECT u.id, u.kind, $3 FROM (
    SELECT unnest($1::text[]) AS id, 'anonymous' AS kind
    UNION ALL SELECT unnest($2::text[]), 'user'
) u
ON CONFLICT (id) DO NOTHING`, anons, users, id)
		if err != nil {
			return fmt.Errorf("record suppressions: %w", err)
		}
		return notifyIDs(ctx, tx, anons)
	})
	if err != nil {
		return ForgetReport{}, fmt.Errorf("forget %s %s: %w", kind, id, err)
	}
	return rep, nil
}

// linkedIDs closes {id} over verified identity links: a visitor's verified
// users, their other verified visitors, and so on. The slices are never nil
// (pgx would send a nil slice as NULL, and ANY(NULL) matches nothing).
func linkedIDs(ctx context.Context, tx pgx.Tx, kind mapping.Kind, id string) (anons, users []string, err error) {
	anons, users = []string{}, []string{}
	if kind == mapping.KindAnonymous {
		anons = append(anons, id)
	} else {
		users = append(users, id)
	}
	for {
		rows, err := tx.Query(ctx, `
SELECT anonymous_id, user_id FROM identity_links WHERE verified AND (anonymous_id = ANY($1) OR user_id = ANY($2))`, anons, users)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve linked ids: %w", err)
		}
		grew := false
		var a, u string
		_, err = pgx.ForEachRow(rows, []any{&a, &u}, func() error {
			if !slices.Contains(anons, a) {
				anons, grew = append(anons, a), true
			}
			if !slices.Contains(users, u) {
				users, grew = append(users, u), true
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("resolve linked ids: %w", err)
		}
		if !grew {
			slices.Sort(anons)
			slices.Sort(users)
			return anons, users, nil
		}
	}
}

// Lift removes the suppressions recorded when id was forgotten, and returns
// the ids lifted.
func (s *Store) Lift(ctx context.Context, id string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM suppressions WHERE forgotten_as = $1 OR id = $1 RETURNING id`, id)
	if err != nil {
		return nil, fmt.Errorf("lift suppression of %s: %w", id, err)
	}
	lifted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("lift suppression of %s: %w", id, err)
	}
	slices.Sort(lifted)
	return lifted, nil
}

// Suppressed returns which of ids are suppressed.
func (s *Store) Suppressed(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM suppressions WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	out := map[string]bool{}
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		out[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	return out, nil
}
