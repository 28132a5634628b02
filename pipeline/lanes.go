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

// runLanes consumes partitions (partition → first offset) in Config.Lanes
// lanes: each lane has its own fetchers, batches and transactions, so
// Postgres applies several batches at once while each partition's batches
// stay in order. A partition is read up to its offset in stop (exclusive)
// when stop has one, else until ctx ends. runLanes returns when every lane
// has finished; see apply for a batch in flight when ctx ends.
func (c *Consumer) runLanes(ctx context.Context, partitions, stop map[int]int64, commit func([]mapping.Position) error, log *zap.Logger) {
	fctx, cancel := context.WithCancel(ctx)
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
			laneFetchers.Go(func() { c.fetch(fctx, p, off, end, msgs, log) })
		}
		fetchers.Go(func() { laneFetchers.Wait(); close(msgs) })
		lanes.Go(func() { c.batches(fctx, commit, msgs, log.With(zap.Int("lane", i))) })
	}
	lanes.Wait()
}
