// Package persistence is Prechat's Postgres storage, through pgx v5: the
// schema migrations, the batch writer that applies a pipeline batch in one
// transaction, the document materialiser and the reads the other roles need.
//
// Driver errors do not leave this package: they are wrapped with what was
// being done, and "no rows" becomes ErrNotFound.
package persistence
