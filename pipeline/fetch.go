package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// transport is the kafka-go Transport equivalent of a Dialer (TLS, SASL,
// dial timeout, client ID); the fetchers and the Writer share this one
// translation of the configured connection settings.
func transport(d *kafka.Dialer) *kafka.Transport {
	t := &kafka.Transport{}
	if d != nil {
		t.TLS, t.SASL, t.DialTimeout, t.ClientID = d.TLS, d.SASLMechanism, d.Timeout, d.ClientID
	}
	return t
}

// fetch reads one partition from offset into out until ctx ends, or, when
// stop ≥ 0, until it has passed stop (exclusive). It uses kafka-go's protocol
// client (kafka.Client.Fetch): each request returns a whole fetch response
// of up to MaxBytes, handed on without kafka.Reader's per-message overhead,
// which would bound the pipeline's rate (docs/performance.md). Failures
// are retried with backoff; an offset that retention has deleted skips to the
// partition's first retained offset, with a warning, as kafka.Reader does.
func (c *Consumer) fetch(ctx context.Context, partition int, offset, stop int64, out chan<- kafka.Message, log *zap.Logger) {
	log = log.With(zap.Int("partition", partition))
	backoff := Backoff{Min: c.cfg.RetryMin, Max: c.cfg.RetryMax}
	fail := func(what string, err error) bool {
		log.Warn(what+" failed; retrying", zap.Int64("offset", offset), zap.Duration("backoff", backoff.Next()), zap.Error(err))
		return backoff.Wait(ctx)
	}
	for ctx.Err() == nil && (stop < 0 || offset < stop) {
		if offset < 0 { // kafka.FirstOffset or kafka.LastOffset: resolve it once
			resolved, err := c.listOffset(ctx, partition, offset)
			if err != nil {
				if ctx.Err() != nil || !fail("reading the start offset", err) {
					return
				}
				continue
			}
			log.Info("partition starts", zap.Int64("offset", resolved))
			offset = resolved
		}
		res, err := c.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: c.cfg.Topic, Partition: partition, Offset: offset,
			MinBytes: 1, MaxBytes: int64(c.cfg.MaxBytes), MaxWait: c.cfg.MaxWait,
		})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if res != nil && errors.Is(err, kafka.OffsetOutOfRange) && offset < res.LogStartOffset {
			log.Warn("messages were deleted by retention before they were consumed; skipping them",
				zap.Int64("offset", offset), zap.Int64("first_retained", res.LogStartOffset))
			c.metrics.skipped.Add(float64(res.LogStartOffset - offset))
			offset = res.LogStartOffset
			continue
		}
		if err == nil {
			offset, err = c.deliver(ctx, res, offset, stop, out)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !fail("fetching", err) {
				return
			}
			continue
		}
		backoff.Reset()
	}
}

// deliver sends a fetch response's records from offset on (a response may
// begin before the requested offset) until stop, and returns the next offset.
func (c *Consumer) deliver(ctx context.Context, res *kafka.FetchResponse, offset, stop int64, out chan<- kafka.Message) (int64, error) {
	for stop < 0 || offset < stop {
		r, err := res.Records.ReadRecord()
		if err == io.EOF {
			return offset, nil
		}
		if err != nil {
			return offset, fmt.Errorf("read records: %w", err)
		}
		if r.Offset < offset {
			closeBytes(r)
			continue
		}
		m, err := message(res, r)
		if err != nil {
			return offset, err
		}
		select {
		case out <- m:
			offset = m.Offset + 1
		case <-ctx.Done():
			return offset, ctx.Err()
		}
	}
	return offset, nil
}

// message copies a record out of the response's pooled buffers.
func message(res *kafka.FetchResponse, r *kafka.Record) (kafka.Message, error) {
	defer closeBytes(r)
	key, err := kafka.ReadAll(r.Key)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("read key at offset %d: %w", r.Offset, err)
	}
	value, err := kafka.ReadAll(r.Value)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("read value at offset %d: %w", r.Offset, err)
	}
	return kafka.Message{Topic: res.Topic, Partition: res.Partition, Offset: r.Offset, HighWaterMark: res.HighWatermark,
		Key: key, Value: value, Headers: r.Headers, Time: r.Time}, nil
}

func closeBytes(r *kafka.Record) {
	for _, b := range []kafka.Bytes{r.Key, r.Value} {
		if b != nil {
			_ = b.Close()
		}
	}
}

// listOffset resolves kafka.FirstOffset or kafka.LastOffset to the
// partition's current first or end offset.
func (c *Consumer) listOffset(ctx context.Context, partition int, which int64) (int64, error) {
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: {{Partition: partition, Timestamp: which}}},
	})
	if err != nil {
		return 0, fmt.Errorf("list offsets of partition %d: %w", partition, err)
	}
	for _, p := range res.Topics[c.cfg.Topic] {
		if p.Partition != partition {
			continue
		}
		if p.Error != nil {
			return 0, fmt.Errorf("list offsets of partition %d: %w", partition, p.Error)
		}
		if which == kafka.FirstOffset {
			return p.FirstOffset, nil
		}
		return p.LastOffset, nil
	}
	return 0, fmt.Errorf("list offsets of partition %d: no answer for it", partition)
}
