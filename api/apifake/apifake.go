// Package apifake provides in-memory fakes of the interfaces package api
// depends on (api.Documents, api.Notifier, api.Producer), for tests of the
// HTTP layer that need no Postgres and no Kafka: what a fake holds is what
// the test put there, and it records what the API did with it.
//
// The end-to-end tests keep running on the real parts (persistence.Store,
// persistence.Hub, pipeline.Writer); a behaviour that depends on them (a
// transaction's notification, Kafka's acknowledgement) is not proven here.
package apifake

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/mapping"
)

var (
	_ api.Documents = (*Documents)(nil)
	_ api.Notifier  = (*Notifier)(nil)
	_ api.Producer  = (*Producer)(nil)
)

// Documents is an in-memory api.Documents. The zero value holds nothing
// and is ready to use.
type Documents struct {
	mu      sync.Mutex
	docs    map[string]stored
	applied map[string]bool
	err     error
	gets    int
}

type stored struct {
	body      []byte
	tokenHash string
}

// Put stores doc as the visitor's document, readable with the secret whose
// lowercase hex SHA-256 is tokenHash ("" for none).
func (d *Documents) Put(anonymousID string, doc []byte, tokenHash string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.docs == nil {
		d.docs = map[string]stored{}
	}
	d.docs[anonymousID] = stored{slices.Clone(doc), tokenHash}
}

// Delete removes the visitor's document.
func (d *Documents) Delete(anonymousID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.docs, anonymousID)
}

// Apply marks messageIDs as applied.
func (d *Documents) Apply(messageIDs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.applied == nil {
		d.applied = map[string]bool{}
	}
	for _, id := range messageIDs {
		d.applied[id] = true
	}
}

// Fail makes every later call return err (nil: succeed again), as storage
// that is unavailable does.
func (d *Documents) Fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// Gets is the number of DocumentRead calls so far.
func (d *Documents) Gets() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gets
}

// DocumentRead implements api.Documents; the fake's documents carry no
// trace context.
func (d *Documents) DocumentRead(ctx context.Context, anonymousID string) ([]byte, string, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gets++
	if d.err != nil {
		return nil, "", "", d.err
	}
	s, ok := d.docs[anonymousID]
	if !ok {
		return nil, "", "", fmt.Errorf("get document of %s: %w", mapping.LogID(anonymousID), mapping.ErrNotFound)
	}
	return slices.Clone(s.body), s.tokenHash, "", nil
}

// Reflects implements api.Documents: the fake's documents are always
// rebuilt, so only whether every messageId is applied counts.
func (d *Documents) Reflects(ctx context.Context, anonymousID string, messageIDs []string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return false, d.err
	}
	for _, id := range messageIDs {
		if !d.applied[id] {
			return false, nil
		}
	}
	return true, nil
}

// Notifier is an in-memory api.Notifier: Notify stands for a committed
// batch's notification. The zero value is ready to use.
type Notifier struct {
	mu       sync.Mutex
	subs     map[string]map[chan struct{}]struct{}
	watchers []func(ids []string)
}

// Subscribe implements api.Notifier.
func (n *Notifier) Subscribe(anonymousID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs == nil {
		n.subs = map[string]map[chan struct{}]struct{}{}
	}
	if n.subs[anonymousID] == nil {
		n.subs[anonymousID] = map[chan struct{}]struct{}{}
	}
	n.subs[anonymousID][ch] = struct{}{}
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.subs[anonymousID], ch)
		if len(n.subs[anonymousID]) == 0 {
			delete(n.subs, anonymousID)
		}
	}
}

// Watch implements api.Notifier.
func (n *Notifier) Watch(fn func(ids []string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.watchers = append(n.watchers, fn)
}

// Notify tells the watchers, then wakes the subscribers, that the
// visitors' state may have changed; with no ids, that anything may have.
func (n *Notifier) Notify(anonymousIDs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ids []string // nil: any
	if len(anonymousIDs) > 0 {
		ids = anonymousIDs
	}
	for _, fn := range n.watchers {
		fn(ids)
	}
	for id, chans := range n.subs {
		if ids != nil && !slices.Contains(ids, id) {
			continue
		}
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Waiters is the number of current subscriptions: the parked long-polls.
func (n *Notifier) Waiters() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for _, chans := range n.subs {
		total += len(chans)
	}
	return total
}

// Producer is an in-memory api.Producer that keeps what it was given. The
// zero value is ready to use.
type Producer struct {
	mu      sync.Mutex
	records []mapping.Record
	err     error
}

// Produce implements api.Producer: it keeps the records, or returns the
// error given to Fail and keeps nothing.
func (p *Producer) Produce(ctx context.Context, records []mapping.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	for _, r := range records {
		p.records = append(p.records, mapping.Record{Key: slices.Clone(r.Key), Value: slices.Clone(r.Value)})
	}
	return nil
}

// Fail makes every later Produce return err (nil: succeed again), as a
// producer whose brokers are unavailable does.
func (p *Producer) Fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// Records returns the records produced so far, in order.
func (p *Producer) Records() []mapping.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.records)
}
