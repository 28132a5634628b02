package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/pipeline"
)

// deadLettersCmd runs "processor deadletters list|requeue".
func deadLettersCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	const usageText = "usage: processor deadletters list [--limit N] [--pending] | processor deadletters requeue (ID... | --all-pending)"
	if len(args) == 0 || (args[0] != "list" && args[0] != "requeue") {
		return usageError{errors.New(usageText)}
	}
	action := args[0]
	var limit int
	var pending, allPending bool
	cfg, rest, err := loadConfig("deadletters "+action, args[1:], environ, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 50, "list: most rows shown")
		fs.BoolVar(&pending, "pending", false, "list: only rows not requeued yet")
		fs.BoolVar(&allPending, "all-pending", false, "requeue: every row not requeued yet")
	})
	if err != nil {
		return usageError{err}
	}
	n := needDB
	if action == "requeue" {
		n |= needKafka
	}
	d, err := openDeps(ctx, cfg, n)
	if err != nil {
		return err
	}
	defer d.close()
	store := d.store

	if action == "list" {
		if len(rest) > 0 {
			return usageError{errors.New(usageText)}
		}
		rows, err := store.DeadLettersList(ctx, persistence.DeadLetterFilter{Limit: limit, Pending: pending})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFAILED AT\tTOPIC/PARTITION@OFFSET\tREQUEUED\tREASON\tMESSAGE")
		for _, d := range rows {
			requeued := "-"
			if d.RequeuedAt != nil {
				requeued = d.RequeuedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s/%d@%d\t%s\t%s\t%s\n", d.ID, d.Time.UTC().Format(time.RFC3339), d.Topic, d.Partition, d.Offset,
				requeued, d.Reason, preview(d.Raw))
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d dead letter(s) shown\n", len(rows))
		return nil
	}

	var filter persistence.DeadLetterFilter
	switch {
	case allPending && len(rest) == 0:
		filter = persistence.DeadLetterFilter{Pending: true, Limit: 100000}
	case !allPending && len(rest) > 0:
		for _, a := range rest {
			id, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("%q is not a dead letter id", a)}
			}
			filter.IDs = append(filter.IDs, id)
		}
		filter.Limit = len(filter.IDs)
	default:
		return usageError{errors.New(usageText)}
	}
	rows, err := store.DeadLettersList(ctx, filter)
	if err != nil {
		return err
	}
	if len(filter.IDs) > 0 && len(rows) != len(filter.IDs) {
		return fmt.Errorf("found %d of the %d dead letters asked for", len(rows), len(filter.IDs))
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "nothing to requeue")
		return nil
	}
	w := pipeline.NewWriter(cfg.brokers(), cfg.KafkaTopic, d.dialer, newLogger(cfg, stderr))
	defer w.Close()
	msgs := make([]kafka.Message, len(rows))
	ids := make([]int64, len(rows))
	for i, d := range rows {
		msgs[i] = kafka.Message{Key: d.Key, Value: d.Raw}
		ids[i] = d.ID
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce to %s: %w (no row was marked)", cfg.KafkaTopic, err)
	}
	if err := store.DeadLettersMarkRequeued(ctx, ids); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "requeued %d dead letter(s) to %s; the rows are kept with requeued_at set\n", len(rows), cfg.KafkaTopic)
	return nil
}

// preview shows the start of a raw message on one line.
func preview(raw []byte) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strconv.Quote(s)
}
