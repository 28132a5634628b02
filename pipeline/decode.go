package pipeline

import (
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/prechat/prechat/mapping"
)

// batchOf decodes and reduces messages into one unit of work: valid events
// fold into the batch's state, invalid ones become dead letters with the
// reason, and each partition's position moves past its last message.
func batchOf(group string, msgs []kafka.Message) *mapping.Batch {
	b := mapping.NewBatch()
	next := map[string]map[int]int64{}
	for i := range msgs {
		m := &msgs[i]
		e, err := mapping.Decode(m.Value, fallbackID(m))
		if err != nil {
			b.DeadLetters = append(b.DeadLetters, mapping.DeadLetter{
				Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
				Key: m.Key, Raw: m.Value, Reason: err.Error(), Time: m.Time,
			})
		} else {
			b.Add(&e, m.Time)
		}
		if next[m.Topic] == nil {
			next[m.Topic] = map[int]int64{}
		}
		if m.Offset+1 > next[m.Topic][m.Partition] {
			next[m.Topic][m.Partition] = m.Offset + 1
		}
	}
	for topic, parts := range next {
		for p, off := range parts {
			b.Positions = append(b.Positions, mapping.Position{Group: group, Topic: topic, Partition: p, NextOffset: off})
		}
	}
	return b
}

// fallbackID names a message that carries no messageId by its place in the
// log, so every replay of the log derives the same id.
func fallbackID(m *kafka.Message) string {
	return fmt.Sprintf("kafka:%s/%d/%d", m.Topic, m.Partition, m.Offset)
}

// commitMap turns positions into kafka-go's CommitOffsets argument.
func commitMap(ps []mapping.Position) map[string]map[int]int64 {
	out := map[string]map[int]int64{}
	for _, p := range ps {
		if out[p.Topic] == nil {
			out[p.Topic] = map[int]int64{}
		}
		out[p.Topic][p.Partition] = p.NextOffset
	}
	return out
}

func positionsString(ps []mapping.Position) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.NextOffset)
	}
	return strings.Join(parts, ",")
}
