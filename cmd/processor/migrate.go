package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/prechat/prechat/persistence"
)

// migrateCmd runs "processor migrate [up|status]".
func migrateCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, rest, err := loadConfig("migrate", args, environ, stderr)
	if err != nil {
		return usageError{err}
	}
	action := "up"
	if len(rest) > 0 {
		action = rest[0]
	}
	if len(rest) > 1 || (action != "up" && action != "status") {
		return usageError{errors.New("usage: processor migrate [up|status]")}
	}
	d, err := openDeps(ctx, cfg, needDB)
	if err != nil {
		return err
	}
	defer d.close()
	store := d.store
	if action == "up" {
		before, err := store.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		if err := store.Migrate(ctx); err != nil {
			return err
		}
		after, err := store.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema migrated from version %d to %d\n", before.Current, after.Current)
		return nil
	}
	st, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VERSION\tNAME\tSTATUS\n")
	for _, m := range st.Migrations {
		status := "pending"
		if m.Applied {
			status = "applied"
		}
		fmt.Fprintf(tw, "%03d\t%s\t%s\n", m.Version, m.Name, status)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "database at version %d of %d\n", st.Current, st.Latest)
	return nil
}

// errSchemaBehind is returned by serve when migrations are pending.
var errSchemaBehind = errors.New("the database schema is behind this binary: run processor migrate")

// checkSchema fails when the database's schema is behind the binary. It
// only reads (MigrationStatus): no migration lock.
func checkSchema(ctx context.Context, store *persistence.Store) error {
	st, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if !st.UpToDate() {
		return fmt.Errorf("%w (database at version %d, binary needs %d)", errSchemaBehind, st.Current, st.Latest)
	}
	return nil
}
