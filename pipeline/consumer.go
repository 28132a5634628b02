package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/prechat/prechat/mapping"
)

// Store is the storage a Consumer applies batches to; *persistence.Store
// satisfies it.
type Store interface {
	// ApplyBatch commits the batch's effects, dead letters and positions in
	// one transaction, with what it changed queued for a document refresh
	// (the result's Queued counts the entries; RefreshQueued works them off).
	// An error wrapping mapping.ErrRejected says the batch's content was
	// refused, which retrying cannot change; any other error is retried.
	ApplyBatch(ctx context.Context, b *mapping.Batch) (mapping.BatchResult, error)
	// TryBatch runs ApplyBatch's transaction, rebuilds the documents the
	// batch changes, and rolls it back, returning the error ApplyBatch would:
	// how a refused batch's culprits are found.
	TryBatch(ctx context.Context, b *mapping.Batch, m *mapping.Materializer) error
	// OffsetsGet returns the stored next offset per partition of a group's
	// topic.
	OffsetsGet(ctx context.Context, group, topic string) (map[int]int64, error)
	// Suppressed returns which of ids are suppressed (processor forget):
	// events naming them are dropped.
	Suppressed(ctx context.Context, ids []string) (map[string]bool, error)
	// RefreshQueued rebuilds, in one transaction, the documents that at
	// most limit of the changes batches queued make stale, oldest first; the
	// result's Queued says how many changes it took, Documents how many
	// documents it wrote. Changes queued less than settle ago wait for a
	// later call.
	// traceparent is the W3C traceparent of the refresh's span ("" when
	// not traced), for the documents it writes; the result's Links are
	// those the changes' batches left (mapping.Batch.Trace).
	RefreshQueued(ctx context.Context, m *mapping.Materializer, limit int, settle time.Duration, traceparent string) (mapping.BatchResult, error)
	// RefreshDelay returns how long the oldest queued change has waited
	// (zero when none waits).
	RefreshDelay(ctx context.Context) (time.Duration, error)
}

// Consumer applies a topic's events to a Store as a member of a consumer
// group. See the package documentation for its delivery contract.
type Consumer struct {
	cfg Config
	// refreshNow wakes refreshLoop when a batch queued refreshes.
	refreshNow chan struct{}
	// behind is set when the last batch committed left at least another
	// full batch waiting in its partitions: refreshes then coalesce.
	behind  atomic.Bool
	store   Store
	log     *zap.Logger
	metrics *metrics
	// client fetches the partitions (see fetch) over transport.
	client    *kafka.Client
	transport *kafka.Transport
	// noPositions leaves positions out of batches (a replay that must not
	// move the live group's offsets).
	noPositions bool
	// tracer traces batches and refreshes; nil when Config.TracerProvider
	// is unset.
	tracer trace.Tracer
}

// New validates the configuration and returns a Consumer.
func New(cfg Config, store Store) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("pipeline: store is required")
	}
	cfg = cfg.withDefaults()
	t := transport(cfg.Dialer)
	c := &Consumer{cfg: cfg, store: store, metrics: newMetrics(cfg.Registerer), refreshNow: make(chan struct{}, 1),
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: t}, transport: t,
		log: cfg.Logger.With(zap.String("topic", cfg.Topic), zap.String("group", cfg.GroupID))}
	if cfg.TracerProvider != nil {
		c.tracer = cfg.TracerProvider.Tracer(instrumentation)
	}
	return c, nil
}

// Run consumes until ctx is cancelled, then finishes or abandons the batch
// in flight, leaves the group and returns nil. It returns an error only when
// the consumer group cannot be created at all.
func (c *Consumer) Run(ctx context.Context) error {
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    c.cfg.GroupID,
		Brokers:               c.cfg.Brokers,
		Dialer:                c.cfg.Dialer,
		Topics:                []string{c.cfg.Topic},
		HeartbeatInterval:     c.cfg.HeartbeatInterval,
		SessionTimeout:        c.cfg.SessionTimeout,
		RebalanceTimeout:      c.cfg.RebalanceTimeout,
		JoinGroupBackoff:      c.cfg.JoinGroupBackoff,
		WatchPartitionChanges: true,
		StartOffset:           c.cfg.StartOffset,
		Logger:                kafkaLogger(c.log, zap.DebugLevel),
		ErrorLogger:           kafkaLogger(c.log, zap.WarnLevel),
	})
	if err != nil {
		return fmt.Errorf("create consumer group %s: %w", c.cfg.GroupID, err)
	}
	defer group.Close()
	defer c.transport.CloseIdleConnections()
	refreshCtx, stopRefresh := context.WithCancel(ctx)
	refreshed := make(chan struct{})
	go func() { defer close(refreshed); c.refreshLoop(refreshCtx) }()
	defer func() { stopRefresh(); <-refreshed }()
	c.log.Info("consumer started", zap.Strings("brokers", c.cfg.Brokers))
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			c.log.Info("consumer stopping")
			c.metrics.keepLag(c.cfg.Topic, nil)
			return nil
		}
		if err != nil {
			c.log.Warn("joining the consumer group failed; retrying", zap.Error(err))
			continue
		}
		c.runGeneration(ctx, gen)
	}
}

// refreshLoop works off the refresh queue (refreshAll) whenever a batch
// queued changes and every RefreshInterval (a queue another member or a
// replay filled). Every document is written here: while batches queue
// faster than it works, the changes of one visitor, user or group wait as
// one entry, and its documents are rebuilt once for all of them.
func (c *Consumer) refreshLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.refreshNow:
		}
		if err := c.refreshAll(ctx, false); err != nil && ctx.Err() == nil {
			c.metrics.retries.Inc()
			c.log.Warn("refreshing queued documents failed; retrying", zap.Error(err))
		}
		if delay, err := c.store.RefreshDelay(ctx); err == nil {
			c.metrics.refreshDelay.Set(delay.Seconds())
		}
	}
}

// refreshAll runs refresh transactions (Store.RefreshQueued), RefreshBatch
// changes each, until one finds fewer than that queued. While the consumer
// is behind, changes younger than RefreshCoalesce wait (see Config), unless
// drain: then every queued change is worked off.
func (c *Consumer) refreshAll(ctx context.Context, drain bool) error {
	for ctx.Err() == nil {
		start := time.Now()
		var settle time.Duration
		if !drain && c.behind.Load() {
			settle = c.cfg.RefreshCoalesce
		}
		res, err := c.refreshSpan(ctx, func(ctx context.Context, tp string) (mapping.BatchResult, error) {
			return c.store.RefreshQueued(ctx, c.cfg.Materializer, c.cfg.RefreshBatch, settle, tp)
		})
		if err != nil {
			return err
		}
		c.metrics.refresh.Observe(time.Since(start).Seconds())
		c.metrics.documents.Add(float64(res.Documents))
		if n := len(res.Unwritable); n > 0 {
			c.metrics.unwritable.Add(float64(n))
			c.log.Error("documents could not be written and were left as they were", zap.Int("visitors", n),
				zap.Strings("anonymousIds", mapping.LogIDs(res.Unwritable)))
		}
		if res.Queued < c.cfg.RefreshBatch {
			return nil
		}
	}
	return ctx.Err()
}

// runGeneration consumes the partitions assigned in gen until the
// generation ends or ctx is cancelled: its work context ends with either
// (see "Shutdown order" in lanes.go).
func (c *Consumer) runGeneration(ctx context.Context, gen *kafka.Generation) {
	assigned := gen.Assignments[c.cfg.Topic]
	log := c.log.With(zap.Int32("generation", gen.ID))
	ids := make([]int, len(assigned))
	for i, a := range assigned {
		ids[i] = a.ID
	}
	log.Info("partitions assigned", zap.Ints("partitions", ids))
	c.metrics.keepLag(c.cfg.Topic, ids)
	done := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		defer close(done)
		work, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(genCtx, cancel)
		defer stop()
		if len(assigned) == 0 {
			<-work.Done()
			return
		}
		offsets, ok := c.startOffsets(work, assigned, log)
		if !ok {
			return
		}
		c.runLanes(work, offsets, nil, commitTo(gen), log)
	})
	<-done
	log.Info("generation ended")
}

// startOffsets picks each assigned partition's first offset: the one stored
// with the effects in Postgres, else the group's Kafka commit, else
// StartOffset. ok is false if the generation ended while Postgres was
// unreachable.
func (c *Consumer) startOffsets(ctx context.Context, assigned []kafka.PartitionAssignment, log *zap.Logger) (map[int]int64, bool) {
	var stored map[int]int64
	err := c.retry(ctx, "read stored offsets", log, func() error {
		var err error
		stored, err = c.store.OffsetsGet(ctx, c.cfg.GroupID, c.cfg.Topic)
		return err
	})
	if err != nil {
		return nil, false
	}
	out := make(map[int]int64, len(assigned))
	for _, a := range assigned {
		off, source := a.Offset, "kafka"
		if s, ok := stored[a.ID]; ok {
			off, source = s, "postgres"
		}
		out[a.ID] = off
		log.Info("resuming partition", zap.Int("partition", a.ID), zap.Int64("offset", off), zap.String("from", source))
	}
	return out, true
}

// pending is a decoded batch on its way to the store. It keeps the raw
// messages it was reduced from (not their decoded events, which take more
// memory), so that it can be rebuilt without the messages the store
// refuses (see isolate).
type pending struct {
	raw        []kafka.Message
	suppressed map[string]bool
	// refused holds the store's errors for messages it refused, by index in
	// raw.
	refused map[int]error
	batch   *mapping.Batch
	tally   tally
	start   time.Time
}

// reduce (re)builds p's batch from its decoded messages, the refused ones
// as dead letters.
func (c *Consumer) reduce(p *pending, msgs []decoded) {
	for i, err := range p.refused {
		msgs[i].refused = err
	}
	p.batch, p.tally = batchOf(c.cfg.GroupID, c.cfg.Policy, msgs, p.suppressed)
	if c.noPositions {
		p.batch.Positions = nil
	}
}

// commitTo commits positions to the generation's Kafka group offsets.
func commitTo(gen *kafka.Generation) func([]mapping.Position) error {
	return func(ps []mapping.Position) error { return gen.CommitOffsets(commitMap(ps)) }
}

// batches runs the two stages of a lane: collect decodes the next batch
// while the current one is being committed, so Go's decoding and Postgres's
// writing overlap. Two decoded batches are in memory at most, besides the
// messages queued in msgs (up to BatchSize, see Config.Lanes).
func (c *Consumer) batches(ctx context.Context, commit func([]mapping.Position) error, msgs <-chan kafka.Message, log *zap.Logger) {
	ready := make(chan pending)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ready)
		c.collect(ctx, msgs, ready)
	})
	defer wg.Wait()
	for p := range ready {
		applyStart := time.Now()
		res, err := c.apply(ctx, &p, log)
		if err != nil {
			log.Warn("batch abandoned; its messages will be consumed again", zap.Int("messages", len(p.raw)), zap.Error(err))
			for range ready { // let collect see ctx end and stop
			}
			return
		}
		if c.cfg.AfterCommit != nil {
			c.cfg.AfterCommit()
		}
		if commit != nil {
			if err := commit(p.batch.Positions); err != nil {
				log.Debug("kafka offset commit failed (postgres holds the offsets)", zap.Error(err))
			}
		}
		info := BatchInfo{Messages: len(p.raw), DeadLetters: len(p.batch.DeadLetters), Result: res, Positions: p.batch.Positions, Took: time.Since(p.start)}
		for _, d := range p.batch.DeadLetters {
			log.Warn("dead letter", zap.Int("partition", d.Partition), zap.Int64("offset", d.Offset), zap.String("reason", d.Reason))
		}
		// Checked first: the positions are only formatted when debug is on.
		if ce := log.Check(zap.DebugLevel, "batch committed"); ce != nil {
			ce.Write(zap.Int("messages", info.Messages), zap.Int("dead_letters", info.DeadLetters),
				zap.Int("documents", res.Documents), zap.String("positions", positionsString(p.batch.Positions)), zap.Duration("took", info.Took))
		}
		c.observe(p, res, time.Since(applyStart))
		if c.cfg.OnBatch != nil {
			c.cfg.OnBatch(info)
		}
	}
}

// collect cuts the message stream into batches of at most BatchSize
// messages, waiting at most BatchTimeout after a batch's first message, and
// decodes each one. It returns when ctx ends, or after the last batch when
// msgs is closed.
func (c *Consumer) collect(ctx context.Context, msgs <-chan kafka.Message, ready chan<- pending) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		buf := make([]kafka.Message, 0, c.cfg.BatchSize)
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			buf = append(buf, m)
		}
		start := time.Now()
		timer.Reset(c.cfg.BatchTimeout)
		closed := false
	fill:
		for len(buf) < c.cfg.BatchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					closed = true
					break fill
				}
				buf = append(buf, m)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				return
			}
		}
		timer.Stop()
		msgs, ids := decodeAll(buf)
		var suppressed map[string]bool
		if len(ids) > 0 {
			if err := c.retry(ctx, "read suppressions", c.log, func() error {
				var err error
				suppressed, err = c.store.Suppressed(ctx, ids)
				return err
			}); err != nil {
				return
			}
		}
		p := pending{raw: buf, suppressed: suppressed, start: start}
		c.reduce(&p, msgs)
		select {
		case ready <- p:
		case <-ctx.Done():
			return
		}
		if closed {
			return
		}
	}
}

// observe records a committed batch in the metrics.
func (c *Consumer) observe(p pending, res mapping.BatchResult, took time.Duration) {
	m := c.metrics
	for k, n := range p.tally.outcomes {
		m.events.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	for r, n := range p.tally.proofs {
		m.proofs.WithLabelValues(string(r)).Add(float64(n))
	}
	m.clamped.Add(float64(p.tally.clamped))
	m.batchSize.Observe(float64(len(p.raw)))
	m.apply.Observe(took.Seconds())
	if res.Queued > 0 {
		m.queued.Add(float64(res.Queued))
		select {
		case c.refreshNow <- struct{}{}:
		default:
		}
	}
	var lag int64
	for _, pos := range p.batch.Positions {
		if hw, ok := p.tally.highWaters[pos.Partition]; ok && hw > 0 {
			m.setLag(pos.Topic, pos.Partition, hw-pos.NextOffset)
			lag += hw - pos.NextOffset
		}
	}
	c.behind.Store(lag >= int64(c.cfg.BatchSize))
}

// apply commits a batch, retrying with backoff while ctx (the generation's
// work) lasts; each attempt may outlive ctx by ShutdownGrace (see "Shutdown
// order" in lanes.go). When the
// store refuses the batch's content (mapping.ErrRejected), the messages
// responsible become dead letters (isolate) and the rest of the batch is
// committed with them.
func (c *Consumer) apply(ctx context.Context, p *pending, log *zap.Logger) (mapping.BatchResult, error) {
	var res mapping.BatchResult
	ctx, span := c.startBatch(ctx, p)
	tp := traceparent(ctx)
	err := c.retry(ctx, "apply batch", log, func() error {
		actx, cancel := withGrace(ctx, c.cfg.ShutdownGrace)
		defer cancel()
		for {
			var err error
			p.batch.Trace = tp
			res, err = c.store.ApplyBatch(actx, p.batch)
			if !errors.Is(err, mapping.ErrRejected) {
				return err
			}
			if err := c.isolate(actx, p, err, log); err != nil {
				return err
			}
		}
	})
	endBatch(span, p, res, err)
	return res, err
}

// retry runs fn until it succeeds or ctx ends, with exponential backoff.
func (c *Consumer) retry(ctx context.Context, what string, log *zap.Logger, fn func() error) error {
	backoff := Backoff{Min: c.cfg.RetryMin, Max: c.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		c.metrics.retries.Inc()
		log.Warn(what+" failed; retrying", zap.Int("attempt", attempt), zap.Duration("backoff", backoff.Next()), zap.Error(err))
		if !backoff.Wait(ctx) {
			return err
		}
	}
}

// withGrace returns a context that ends grace after ctx ends.
func withGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return gctx, func() { stop(); cancel() }
}

// kafkaLogger adapts zap to kafka-go's logger at one level.
func kafkaLogger(log *zap.Logger, level zapcore.Level) kafka.LoggerFunc {
	sugar := log.WithOptions(zap.AddCallerSkip(1)).Sugar()
	return func(msg string, args ...any) { sugar.Logf(level, "kafka: "+msg, args...) }
}
