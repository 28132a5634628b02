package pipeline

import (
	"context"
	"slices"
	"sync"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
)

// deal splits partitions (partition → first offset) into at most n lanes,
// dealing them in partition order so lanes get equal shares.
func deal(partitions map[int]int64, n int) []map[int]int64 {
	ids := make([]int, 0, len(partitions))
	for p := range partitions {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	lanes := make([]map[int]int64, min(n, len(ids)))
	for i, p := range ids {
		l := i % len(lanes)
		if lanes[l] == nil {
			lanes[l] = map[int]int64{}
		}
		lanes[l][p] = partitions[p]
	}
	return lanes
}

// Shutdown order. One context, passed down Run → runGeneration → runLanes →
// batches → apply, says when a generation's work ends: at a shutdown (Run's
// context cancelled) or at a rebalance (kafka-go ends the generation);
// runGeneration derives it from both (its variable work). When it ends:
//
//  1. the fetchers stop, and collect cuts no new batch;
//  2. each lane's batch in flight keeps committing: every attempt of apply
//     runs under withGrace, which outlives the work context by
//     ShutdownGrace and then cancels the attempt, so that a Postgres that
//     does not answer cannot keep the member in its generation; an
//     abandoned batch stores no offsets, so its messages are consumed again;
//  3. runLanes returns once every lane has (and cancels what fetchers are
//     left), then runGeneration, and kafka-go ends the generation;
//  4. at a rebalance, Run joins the next generation; at a shutdown, it waits
//     for the refresh loop (which ends with Run's context) and leaves the
//     group (group.Close).

// runLanes consumes partitions (partition → first offset) in Config.Lanes
// lanes: each lane has its own fetchers, batches and transactions, so
// Postgres applies several batches at once while each partition's batches
// stay in order. A partition is read up to its offset in stop (exclusive)
// when stop has one, else until ctx (the generation's work) ends. runLanes
// returns when every lane has finished (see "Shutdown order" above).
func (c *Consumer) runLanes(ctx context.Context, partitions, stop map[int]int64, commit func([]mapping.Position) error, log *zap.Logger) {
	running, cancel := context.WithCancel(ctx)
	defer cancel()
	var fetchers, lanes sync.WaitGroup
	defer fetchers.Wait()
	defer cancel() // runs first: stops the fetchers once every lane is done
	if commit != nil {
		var mu sync.Mutex
		unsafe := commit
		commit = func(ps []mapping.Position) error {
			mu.Lock()
			defer mu.Unlock()
			return unsafe(ps)
		}
	}
	for i, lane := range deal(partitions, c.cfg.Lanes) {
		msgs := make(chan kafka.Message, c.cfg.BatchSize)
		var laneFetchers sync.WaitGroup
		for p, off := range lane {
			end, ok := stop[p]
			if !ok {
				end = -1
			}
			laneFetchers.Go(func() { c.fetch(running, p, off, end, msgs, log) })
		}
		fetchers.Go(func() { laneFetchers.Wait(); close(msgs) })
		lanes.Go(func() { c.batches(running, commit, msgs, log.With(zap.Int("lane", i))) })
	}
	lanes.Wait()
}
