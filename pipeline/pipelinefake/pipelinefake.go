// Package pipelinefake provides an in-memory fake of pipeline.Store, for
// tests of the consumer's own logic (batching, offsets, isolating refused
// messages) that need no Postgres. It commits a batch by keeping its
// positions and counting its messages; it builds no documents.
//
// The tests of what storage does with a batch (effects, documents,
// Postgres's refusals and outages) keep running on persistence.Store.
package pipelinefake

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/pipeline"
)

var _ pipeline.Store = (*Store)(nil)

// Store is an in-memory pipeline.Store. The zero value is ready to use.
type Store struct {
	// Refuse, if set, sees every batch before ApplyBatch or TryBatch
	// commits it; the error it returns (wrap mapping.ErrRejected for a
	// refusal of the batch's content, which the consumer isolates) is
	// returned instead, and nothing is committed.
	Refuse func(b *mapping.Batch) error

	mu         sync.Mutex
	offsets    map[string]map[int]int64
	applied    map[string]int
	dead       []mapping.DeadLetter
	batches    []Committed
	suppressed map[string]bool
}

// Committed is what one committed batch held.
type Committed struct {
	// Messages is the number of messages, dead letters included.
	Messages int
	// Applied are the messageIds of its tracked events.
	Applied []string
	// Positions are the next offsets after it, per partition.
	Positions []mapping.Position
}

// ApplyBatch implements pipeline.Store.
func (s *Store) ApplyBatch(ctx context.Context, b *mapping.Batch) (mapping.BatchResult, error) {
	if err := s.TryBatch(ctx, b, nil); err != nil {
		return mapping.BatchResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offsets == nil {
		s.offsets = map[string]map[int]int64{}
		s.applied = map[string]int{}
	}
	c := Committed{Messages: b.Len(), Positions: slices.Clone(b.Positions)}
	for _, p := range b.Positions {
		key := p.Group + "\x00" + p.Topic
		if s.offsets[key] == nil {
			s.offsets[key] = map[int]int64{}
		}
		s.offsets[key][p.Partition] = p.NextOffset
	}
	for _, a := range b.Applied {
		s.applied[a.MessageID]++
		c.Applied = append(c.Applied, a.MessageID)
	}
	s.dead = append(s.dead, b.DeadLetters...)
	s.batches = append(s.batches, c)
	return mapping.BatchResult{}, nil
}

// TryBatch implements pipeline.Store: it returns what Refuse says.
func (s *Store) TryBatch(ctx context.Context, b *mapping.Batch, m *mapping.Materializer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.Refuse != nil {
		return s.Refuse(b)
	}
	return nil
}

// OffsetsGet implements pipeline.Store.
func (s *Store) OffsetsGet(ctx context.Context, group, topic string) (map[int]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int64{}
	for p, off := range s.offsets[group+"\x00"+topic] {
		out[p] = off
	}
	return out, nil
}

// Suppress makes ids suppressed, as processor forget does.
func (s *Store) Suppress(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.suppressed == nil {
		s.suppressed = map[string]bool{}
	}
	for _, id := range ids {
		s.suppressed[id] = true
	}
}

// Suppressed implements pipeline.Store.
func (s *Store) Suppressed(ctx context.Context, ids []string) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, id := range ids {
		if s.suppressed[id] {
			out[id] = true
		}
	}
	return out, nil
}

// RefreshDelay implements pipeline.Store: the fake queues no refreshes.
func (s *Store) RefreshDelay(ctx context.Context) (time.Duration, error) { return 0, nil }

// RefreshQueued implements pipeline.Store: the fake queues no refreshes.
func (s *Store) RefreshQueued(ctx context.Context, m *mapping.Materializer, limit int, settle time.Duration, traceparent string) (mapping.BatchResult, error) {
	return mapping.BatchResult{}, nil
}

// Applied returns how many committed batches held each messageId.
func (s *Store) Applied() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.applied))
	for id, n := range s.applied {
		out[id] = n
	}
	return out
}

// DeadLetters returns the dead letters committed so far, in order.
func (s *Store) DeadLetters() []mapping.DeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dead)
}

// Batches returns the batches committed so far, in order.
func (s *Store) Batches() []Committed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}
