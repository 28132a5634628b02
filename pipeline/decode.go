package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prechat/prechat/mapping"
)

// tally counts a batch's messages by event type and outcome, and keeps each
// partition's high watermark, for the metrics.
type tally struct {
	outcomes   map[[2]string]int
	highWaters map[int]int64
	// proofs counts identity proofs by outcome (events without one are
	// not counted); clamped counts events whose claimed time was replaced
	// by the record time (mapping.Window).
	proofs  map[mapping.ProofResult]int
	clamped int
}

// decoded is one message with its event, or the reason it is a dead letter:
// err when it is not a valid event, refused when the store refused it.
type decoded struct {
	msg     *kafka.Message
	event   mapping.Event
	err     error
	refused error
}

// decodeAll decodes messages and lists the ids they name (anonymousId,
// userId, previousId), for the suppression check.
func decodeAll(msgs []kafka.Message) ([]decoded, []string) {
	out := make([]decoded, len(msgs))
	seen := map[string]bool{}
	var ids []string
	for i := range msgs {
		m := &msgs[i]
		e, err := mapping.Decode(m.Value, fallbackID(m))
		out[i] = decoded{msg: m, event: e, err: err}
		if err != nil {
			continue
		}
		for _, id := range []string{e.AnonymousID, e.UserID, e.PreviousID} {
			if id != "" && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return out, ids
}

// batchOf reduces decoded messages into one unit of work: valid events are
// admitted under the policy (time window, identity proof, as of the record
// time) and fold into the batch's state, invalid ones become dead letters
// with the reason, events naming a suppressed id are dropped, and each
// partition's position moves past its last message.
func batchOf(group string, policy *mapping.Policy, msgs []decoded, suppressed map[string]bool) (*mapping.Batch, tally) {
	b := mapping.NewBatch()
	t := tally{outcomes: map[[2]string]int{}, highWaters: map[int]int64{}, proofs: map[mapping.ProofResult]int{}}
	next := map[string]map[int]int64{}
	for _, d := range msgs {
		m, e := d.msg, &d.event
		t.highWaters[m.Partition] = max(t.highWaters[m.Partition], m.HighWaterMark)
		switch {
		case d.err != nil:
			b.DeadLetters = append(b.DeadLetters, deadLetter(m, d.err))
			t.outcomes[[2]string{"invalid", "dead_letter"}]++
		case d.refused != nil:
			b.DeadLetters = append(b.DeadLetters, deadLetter(m, d.refused))
			t.outcomes[[2]string{string(e.Type), "dead_letter"}]++
		case suppressed[e.AnonymousID] || suppressed[e.UserID] || suppressed[e.PreviousID]:
			t.outcomes[[2]string{string(e.Type), "suppressed"}]++
			if b.Suppressed == nil {
				b.Suppressed = map[string]int{}
			}
			for _, id := range []string{e.AnonymousID, e.UserID, e.PreviousID} {
				if suppressed[id] {
					b.Suppressed[id]++
				}
			}
		default:
			a := policy.Admit(e, m.Time)
			if a.Refused != nil {
				b.DeadLetters = append(b.DeadLetters, deadLetter(m, a.Refused))
				t.outcomes[[2]string{string(e.Type), "dead_letter"}]++
				break
			}
			if a.Clamped {
				t.clamped++
			}
			if a.Proof != mapping.ProofNone {
				t.proofs[a.Proof]++
			}
			b.Add(e, m.Time)
			outcome := "applied"
			if !e.CanChangeDocument() {
				outcome = "ignored"
			}
			t.outcomes[[2]string{string(e.Type), outcome}]++
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
	return b, t
}

// deadLetter records m with the reason it cannot be applied. Nothing in it
// may be refused in turn: the reason is made valid UTF-8 without NUL, and a
// record time outside the years 1 to 9999 (a producer sets it) is left out.
func deadLetter(m *kafka.Message, reason error) mapping.DeadLetter {
	at := m.Time
	if at.Year() < 1 || at.Year() > 9999 {
		at = time.Time{}
	}
	text := strings.ReplaceAll(strings.ToValidUTF8(reason.Error(), "\uFFFD"), "\x00", "\\u0000")
	return mapping.DeadLetter{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Raw: m.Value, Reason: text, Time: at}
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
