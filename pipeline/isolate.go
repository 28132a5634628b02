package pipeline

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
)

// isolate handles a batch the store refused (cause wraps
// mapping.ErrRejected): it finds the messages responsible, marks them
// refused, so that they become dead letters with the store's reason, and
// rebuilds the batch, which then commits the rest of its messages with them
// in one transaction. Parts of the batch are tried in transactions that are
// rolled back (Store.TryBatch). Each call marks at least one message, so a
// partition is never stuck behind one. A transient error while trying ends
// it, and the caller retries.
func (c *Consumer) isolate(ctx context.Context, p *pending, cause error, log *zap.Logger) error {
	msgs, _ := decodeAll(p.raw)
	var candidates []int
	for i, d := range msgs {
		if d.err == nil && p.refused[i] == nil {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		// Only dead letters and positions are left, which the store cannot
		// refuse (see deadLetter): the refusal is not the messages' doing.
		return fmt.Errorf("batch without applicable messages refused: %w", cause)
	}
	c.metrics.splits.Inc()
	log.Warn("batch refused by storage; splitting it to find the messages responsible",
		zap.Int("messages", len(candidates)), zap.Error(cause))
	s := splitter{c: c, ctx: ctx, msgs: msgs, suppressed: p.suppressed}
	found, err := s.culprits(candidates, cause)
	if err != nil {
		return err
	}
	if len(found) == 0 { // refused together, each half accepted alone
		if found, err = s.firstRefused(candidates, cause); err != nil {
			return err
		}
	}
	if p.refused == nil {
		p.refused = map[int]error{}
	}
	for _, f := range found {
		p.refused[f.index] = fmt.Errorf("storage refused it: %w", f.err)
	}
	c.reduce(p, msgs)
	return nil
}

// culprit is a message the store refused, with its error.
type culprit struct {
	index int
	err   error
}

// splitter tries parts of a batch's decoded messages.
type splitter struct {
	c          *Consumer
	ctx        context.Context
	msgs       []decoded
	suppressed map[string]bool
}

// try runs a trial of the batch made of these messages alone.
func (s splitter) try(indexes []int) error {
	msgs := make([]decoded, len(indexes))
	for i, x := range indexes {
		msgs[i] = s.msgs[x]
	}
	b, _ := batchOf(s.c.cfg.GroupID, s.c.cfg.Policy, msgs, s.suppressed)
	return s.c.store.TryBatch(s.ctx, b, s.c.cfg.Materializer)
}

// culprits bisects xs, which the store refused with cause: each half is
// tried alone and a refused half is bisected in turn, down to single
// messages. It costs about two trials per message of the batch for each
// message refused. It finds nothing when only messages of different halves
// together are refused.
func (s splitter) culprits(xs []int, cause error) ([]culprit, error) {
	if len(xs) == 1 {
		return []culprit{{xs[0], cause}}, nil
	}
	var out []culprit
	mid := len(xs) / 2
	for _, half := range [][]int{xs[:mid], xs[mid:]} {
		err := s.try(half)
		if err != nil && !errors.Is(err, mapping.ErrRejected) {
			return nil, err
		}
		if err != nil {
			found, err := s.culprits(half, err)
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
		}
	}
	return out, nil
}

// firstRefused finds, by binary search over prefixes of xs (which the store
// refused with cause), the first message that the store refuses on top of
// the messages before it.
func (s splitter) firstRefused(xs []int, cause error) ([]culprit, error) {
	lo, hi := 0, len(xs) // xs[:lo] is accepted (nothing is), xs[:hi] refused
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		switch err := s.try(xs[:mid]); {
		case err == nil:
			lo = mid
		case errors.Is(err, mapping.ErrRejected):
			hi, cause = mid, err
		default:
			return nil, err
		}
	}
	return []culprit{{xs[hi-1], cause}}, nil
}
