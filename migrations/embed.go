// Package migrations holds Prechat's Postgres schema as numbered SQL files in
// tern's format (NNN_name.sql, "---- create above / drop below ----" between
// the up and down parts), embedded so the binary migrates without files on
// disk.
package migrations

import "embed"

// FS holds the migration files at its root.
//
//go:embed *.sql
var FS embed.FS
