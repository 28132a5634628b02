package persistence

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// OffsetsGet returns, per partition, the next offset to consume that the
// consumer group stored with its last committed batch. Partitions the group
// never committed are absent.
func (s *Store) OffsetsGet(ctx context.Context, group, topic string) (map[int]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT "partition", next_offset FROM kafka_offsets WHERE consumer_group = $1 AND topic = $2`, group, topic)
	if err != nil {
		return nil, fmt.Errorf("read offsets of group %s topic %s: %w", group, topic, err)
	}
	out := map[int]int64{}
	var p int32
	var next int64
	_, err = pgx.ForEachRow(rows, []any{&p, &next}, func() error {
		out[int(p)] = next
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read offsets of group %s topic %s: %w", group, topic, err)
	}
	return out, nil
}
