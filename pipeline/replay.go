package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"
)

// From says where a replay starts; exactly one field is set.
type From struct {
	// Earliest starts at each partition's first retained message.
	Earliest bool
	// Time starts at each partition's first message at or after it.
	Time time.Time
	// Offsets starts each listed partition at its offset; others are skipped.
	Offsets map[int]int64
}

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// From is where the replay starts.
	From From
	// To is the exclusive end offset per partition. Default: each
	// partition's end when the replay starts.
	To map[int]int64
	// RecordPositions stores the end positions under Config.GroupID with the
	// batches, as a consumer would: set it when rebuilding into an empty
	// database that the live consumers will then continue from. Otherwise a
	// replay leaves the live group's offsets alone.
	RecordPositions bool
	// OnStart, if set, is called once the range is known.
	OnStart func(r Range)
}

// Range is a replay's span of the log.
type Range struct {
	// Start and End are the first and the end (exclusive) offset per
	// partition.
	Start, End map[int]int64
}

// Messages is the number of messages in the range.
func (r Range) Messages() int64 {
	var n int64
	for p, end := range r.End {
		n += max(end-r.Start[p], 0)
	}
	return n
}

// Replay re-runs the pipeline over a range of the topic with its own
// readers (no consumer group), applying batches to the store exactly as the
// live consumers do, while they keep running. Effects are idempotent, so the
// state converges to the same result. It refreshes queued documents while
// it runs, as consumers do, and returns when the range is applied and the
// refresh queue worked off, or with ctx's error.
func Replay(ctx context.Context, cfg Config, store Store, opts ReplayOptions) (Range, error) {
	c, err := New(cfg, store)
	if err != nil {
		return Range{}, err
	}
	c.noPositions = !opts.RecordPositions
	defer c.transport.CloseIdleConnections()
	rng, err := c.resolve(ctx, opts)
	if err != nil {
		return Range{}, err
	}
	if opts.OnStart != nil {
		opts.OnStart(rng)
	}
	c.log.Info("replay starting", zap.Int64("messages", rng.Messages()), zap.Any("start", rng.Start), zap.Any("end", rng.End))
	refreshCtx, stopRefresh := context.WithCancel(ctx)
	refreshed := make(chan struct{})
	go func() { defer close(refreshed); c.refreshLoop(refreshCtx) }()
	c.runLanes(ctx, rng.Start, rng.End, nil, c.log)
	stopRefresh()
	<-refreshed
	if err := ctx.Err(); err != nil {
		return rng, fmt.Errorf("replay stopped: %w", err)
	}
	if err := c.retry(ctx, "refreshing queued documents", c.log, func() error { return c.refreshAll(ctx, true) }); err != nil {
		return rng, fmt.Errorf("replay stopped: %w", errors.Join(ctx.Err(), err))
	}
	return rng, nil
}

// resolve turns the options into offsets, asking each partition's leader.
func (c *Consumer) resolve(ctx context.Context, opts ReplayOptions) (Range, error) {
	conn, err := c.cfg.Dialer.DialContext(ctx, "tcp", c.cfg.Brokers[0])
	if err != nil {
		return Range{}, fmt.Errorf("connect to %s: %w", c.cfg.Brokers[0], err)
	}
	parts, err := conn.ReadPartitions(c.cfg.Topic)
	conn.Close()
	if err != nil {
		return Range{}, fmt.Errorf("read partitions of %s: %w", c.cfg.Topic, err)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].ID < parts[j].ID })
	rng := Range{Start: map[int]int64{}, End: map[int]int64{}}
	for _, p := range parts {
		if opts.From.Offsets != nil {
			if _, ok := opts.From.Offsets[p.ID]; !ok {
				continue
			}
		}
		leader, err := c.cfg.Dialer.DialLeader(ctx, "tcp", c.cfg.Brokers[0], c.cfg.Topic, p.ID)
		if err != nil {
			return Range{}, fmt.Errorf("connect to the leader of partition %d: %w", p.ID, err)
		}
		first, last, err := leader.ReadOffsets()
		if err == nil {
			switch {
			case opts.From.Offsets != nil:
				rng.Start[p.ID] = max(opts.From.Offsets[p.ID], first)
			case !opts.From.Time.IsZero():
				var off int64
				if off, err = leader.ReadOffset(opts.From.Time); off < 0 {
					off = last // no message at or after the time
				}
				rng.Start[p.ID] = off
			default:
				rng.Start[p.ID] = first
			}
		}
		leader.Close()
		if err != nil {
			return Range{}, fmt.Errorf("read offsets of partition %d: %w", p.ID, err)
		}
		rng.End[p.ID] = last
		if to, ok := opts.To[p.ID]; ok && to < last {
			rng.End[p.ID] = to
		}
		rng.Start[p.ID] = min(rng.Start[p.ID], rng.End[p.ID])
	}
	if len(rng.Start) == 0 {
		return Range{}, errors.New("no partition to replay")
	}
	return rng, nil
}
