package mapping

import "time"

// Stamp orders writes to the same trait key, link or membership:
// last writer wins by event time, ties broken by messageId. Because the order
// is total and depends only on the events, applying the same events in any
// order, any number of times, yields the same state.
//
// Two events that share a messageId are duplicates (Segment's own rule); if
// their contents differ, which one is kept is unspecified.
type Stamp struct {
	// At is the event time (Event.Time), truncated to microseconds.
	At time.Time
	// MessageID is the event's messageId.
	MessageID string
}

// After reports whether s wins over o.
func (s Stamp) After(o Stamp) bool {
	if !s.At.Equal(o.At) {
		return s.At.After(o.At)
	}
	return s.MessageID > o.MessageID
}

// Trait is one stored trait value with the stamp of the event that wrote it.
type Trait struct {
	Value []byte
	Stamp
	// Verified is set when the trait is read from a shared profile that
	// only verified events write (a verified user's or group's); it is not
	// stored.
	Verified bool
}

// Traits is a profile's traits by key.
type Traits map[string]Trait

// Merge writes each of the event's traits into t where it wins, and reports
// whether anything changed. A nil map is created on first write.
func (t *Traits) Merge(values Object, s Stamp) bool {
	changed := false
	for k, v := range values {
		changed = t.Put(k, Trait{Value: v, Stamp: s}) || changed
	}
	return changed
}

// Put stores v under key k if it wins over the value there, and reports
// whether it did.
func (t *Traits) Put(k string, v Trait) bool {
	if cur, ok := (*t)[k]; ok && !v.After(cur.Stamp) {
		return false
	}
	if *t == nil {
		*t = Traits{}
	}
	(*t)[k] = v
	return true
}

// Union merges profiles key by key with the same rule, as when a visitor's
// anonymous traits and its user's traits are read together.
func Union(profiles ...Traits) Traits {
	var out Traits
	for _, p := range profiles {
		for k, v := range p {
			out.Put(k, v)
		}
	}
	return out
}
