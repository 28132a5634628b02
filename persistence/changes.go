package persistence

import (
	"cmp"
	"slices"

	"github.com/prechat/prechat/mapping"
)

// Kinds of document_refreshes entries: a visitor, or a user or group whose
// documents are to be rebuilt, or a visitor to rebuild once more after a
// refresh started building its document from other shared profiles (see
// migrations 008 and 010). recheck_user entries are no longer queued; those
// left from before are expanded as users.
const (
	changedVisitor = string(mapping.KindAnonymous)
	changedUser    = string(mapping.KindUser)
	changedGroup   = string(mapping.KindGroup)
	recheckVisitor = "recheck"
	recheckUser    = "recheck_user"
)

// change is a document_refreshes entry.
type change struct{ kind, id string }

func compareChange(a, b change) int {
	return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.id, b.id))
}

// changeKeys returns the changes' kinds and ids as statement arguments, in
// key order: the order in which batches and refreshes lock queue entries.
func changeKeys(cs []change) (kinds, ids []string) {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, compareChange)
	kinds, ids = make([]string, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		kinds[i], ids[i] = c.kind, c.id
	}
	return kinds, ids
}

// changesOf lists, sorted, what the batch state changed that documents are
// built from: every visitor whose own rows it wrote (traits, its view of a
// group, links, memberships, conversation starts), every user whose traits
// or memberships it wrote, and every group whose shared traits it wrote. A
// visitor's document depends on its user and group only through these
// rows, so rebuilding the live visitors of each (after the batch commits)
// reflects everything the batch did.
func changesOf(st *mapping.State) []change {
	seen := map[change]bool{}
	add := func(kind, id string) {
		if id != "" {
			seen[change{kind, id}] = true
		}
	}
	subject := func(sub mapping.Subject) {
		switch {
		case sub.Observer != "":
			add(changedVisitor, sub.Observer)
		case sub.Kind == mapping.KindAnonymous:
			add(changedVisitor, sub.ID)
		case sub.Kind == mapping.KindUser:
			add(changedUser, sub.ID)
		case sub.Kind == mapping.KindGroup:
			add(changedGroup, sub.ID)
		}
	}
	for sub := range st.Traits {
		subject(sub)
	}
	for l := range st.Links {
		add(changedVisitor, l.AnonymousID)
	}
	for m := range st.Memberships {
		subject(m.Member)
	}
	for a := range st.Conversations {
		add(changedVisitor, a)
	}
	return sortedKeys(seen, compareChange)
}

// queueChanges queues changes of the batch (changesOf) for a refresh. Only
// what can change a document is queued: a visitor with a conversation row,
// a user with a verified link to one, a group some document is built from
// (prechat_documents.group_id).
// The batch's own writes are visible to the statement. A link, membership
// or conversation start that a batch running beside this one adds is not:
// the refresh that then builds a document from it queues a recheck of its
// visitor; for a group, groupLocks closes the gap (see migration 010).
//
// An entry already queued is re-armed: the UPDATE holds it until the batch
// commits, so no refresh claims it (SKIP LOCKED) before the change is
// visible; it clears a refresh's claim, so that refresh leaves the entry
// queued, and restarts a paged expansion. trace, the batch span's
// traceparent, is kept with each entry (NULL when ""), unless the batch is
// not traced and the entry already has one.
func queueChanges(batch *statements, changes []change, trace string) {
	if len(changes) == 0 {
		return
	}
	kinds, ids := changeKeys(changes)
	var tp *string
	if trace != "" {
		tp = &trace
	}
	batch.Queue(`
INSERT INTO document_refreshes AS r (subject_kind, subject_id, traceparent)
SELECT k, i, $3::text
FROM unnest($1::text[], $2::text[]) AS u(k, i)
WHERE CASE k
    WHEN 'anonymous' THEN EXISTS (SELECT 1 FROM conversations c WHERE c.anonymous_id = u.i)
    WHEN 'user' THEN EXISTS (SELECT 1 FROM identity_links l, LATERAL (SELECT 1 FROM conversations c WHERE c.anonymous_id = l.anonymous_id OFFSET 0) c
                             WHERE l.user_id = u.i AND l.verified)
    ELSE EXISTS (SELECT 1 FROM prechat_documents d WHERE d.group_id = u.i)
    END
ON CONFLICT (subject_kind, subject_id) DO UPDATE
SET resume_after = NULL, claimed_until = NULL, traceparent = coalesce(excluded.traceparent, r.traceparent)`,
		kinds, ids, tp)
}

// groupLockClass namespaces the advisory locks of groupLocks (two-key form:
// this class, and hashtext of the groupId).
const groupLockClass = 0x70726567 // "preg"

// groupLocks takes, in hash order, a transaction-scoped advisory lock per
// group: exclusive in a batch that writes the groups' shared traits, shared
// in a refresh about to build documents from groups they did not show
// before. Either the refresh waits for the batch and reads its change, or
// the batch waits for the refresh and then sees the refresh's documents in
// prechat_documents.group_id (queueChanges), so no group change is lost
// between a structural change and the refresh that follows it.
func groupLocks(groups []string, shared bool) statement {
	sql := groupLockSQL
	if shared {
		sql = groupSharedLockSQL
	}
	return statement{sql: sql, args: []any{groups, groupLockClass}}
}

// groupLockHashes are the groups' ($1) lock keys, each once, in order.
const groupLockHashes = ` FROM (SELECT DISTINCT hashtext(g) AS h FROM unnest($1::text[]) AS g ORDER BY h) s`

const (
	groupLockSQL       = `SELECT pg_advisory_xact_lock($2::int, h)` + groupLockHashes
	groupSharedLockSQL = `SELECT pg_advisory_xact_lock_shared($2::int, h)` + groupLockHashes
)
