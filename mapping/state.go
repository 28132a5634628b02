package mapping

import (
	"time"
)

// Kind says whose traits a Subject holds.
type Kind string

// Subject kinds.
const (
	KindUser      Kind = "user"
	KindAnonymous Kind = "anonymous"
	KindGroup     Kind = "group"
)

// Subject is a profile that holds traits: a user (userId), an anonymous
// visitor (anonymousId) or a group (groupId).
type Subject struct {
	Kind Kind
	ID   string
}

// Link ties an anonymous visitor to a user.
type Link struct {
	AnonymousID string
	UserID      string
}

// Membership ties a user or anonymous visitor to a group.
type Membership struct {
	Member  Subject
	GroupID string
}

// State is the effect of a set of events, already reduced by the
// last-writer-wins rule: per subject and trait key, per link, per membership
// and per visitor's conversation, only the winning write is kept.
//
// The pipeline reduces each batch into a State before writing it, so one
// upsert never meets the same key twice; tests use a State fed with a whole
// event stream as the model the stored state must equal.
type State struct {
	Traits        map[Subject]Traits
	Links         map[Link]Stamp
	Memberships   map[Membership]Stamp
	Conversations map[string]Conversation
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		Traits:        map[Subject]Traits{},
		Links:         map[Link]Stamp{},
		Memberships:   map[Membership]Stamp{},
		Conversations: map[string]Conversation{},
	}
}

// Apply folds one valid event into the state, as the destination's handlers
// would: identify caches traits, group caches group traits and membership,
// alias and any event carrying both ids link them, and the conversation
// start is kept per anonymousId. Other events change nothing but links.
// fallback is the event time when the event carries none (see Event.Time).
func (s *State) Apply(e *Event, fallback time.Time) {
	st := e.Stamp(fallback)
	actor := Subject{KindAnonymous, e.AnonymousID}
	if e.UserID != "" {
		actor = Subject{KindUser, e.UserID}
	}
	if e.AnonymousID != "" && e.UserID != "" {
		s.link(Link{e.AnonymousID, e.UserID}, st)
	}
	switch {
	case e.Type == TypeIdentify:
		s.traits(actor, e.Traits, st)
	case e.Type == TypeGroup:
		s.traits(Subject{KindGroup, e.GroupID}, e.Traits, st)
		putStamp(s.Memberships, Membership{actor, e.GroupID}, st)
	case e.Type == TypeAlias:
		s.link(Link{e.PreviousID, e.UserID}, st)
	case e.IsConversationStart():
		if cur, ok := s.Conversations[e.AnonymousID]; !ok || st.After(cur.Stamp) {
			s.Conversations[e.AnonymousID] = Conversation{Stamp: st, Properties: e.Properties, TokenHash: e.TokenHash}
		}
	}
}

func (s *State) traits(sub Subject, values Object, st Stamp) {
	if len(values) == 0 {
		return
	}
	t := s.Traits[sub]
	t.Merge(values, st)
	s.Traits[sub] = t
}

func (s *State) link(l Link, st Stamp) {
	if l.AnonymousID != "" && l.UserID != "" {
		putStamp(s.Links, l, st)
	}
}

// putStamp keeps the latest stamp per key.
func putStamp[K comparable](m map[K]Stamp, k K, st Stamp) {
	if cur, ok := m[k]; !ok || st.After(cur) {
		m[k] = st
	}
}

// Visitor resolves what a document for anonymousID is built from: the latest
// linked user, the union of anonymous and user traits, and the latest group
// among the visitor's and its user's memberships. ok is false when the
// visitor has no conversation start.
func (s *State) Visitor(anonymousID string) (v Visitor, ok bool) {
	return s.index().visitor(anonymousID)
}

// Visitors resolves many visitors at once (see Visitor), indexing the state
// once; visitors without a conversation start are left out.
func (s *State) Visitors(anonymousIDs []string) []Visitor {
	ix := s.index()
	out := make([]Visitor, 0, len(anonymousIDs))
	for _, a := range anonymousIDs {
		if v, ok := ix.visitor(a); ok {
			out = append(out, v)
		}
	}
	return out
}

// stateIndex finds links by visitor and memberships by member.
type stateIndex struct {
	*State
	links   map[string][]Link
	members map[Subject][]Membership
}

func (s *State) index() stateIndex {
	ix := stateIndex{State: s, links: map[string][]Link{}, members: map[Subject][]Membership{}}
	for l := range s.Links {
		ix.links[l.AnonymousID] = append(ix.links[l.AnonymousID], l)
	}
	for m := range s.Memberships {
		ix.members[m.Member] = append(ix.members[m.Member], m)
	}
	return ix
}

func (ix stateIndex) visitor(anonymousID string) (v Visitor, ok bool) {
	conv, ok := ix.Conversations[anonymousID]
	if !ok {
		return Visitor{}, false
	}
	v = Visitor{AnonymousID: anonymousID, Conversation: conv}
	var linkStamp Stamp
	for _, l := range ix.links[anonymousID] {
		if st := ix.Links[l]; v.UserID == "" || st.After(linkStamp) {
			v.UserID, linkStamp = l.UserID, st
		}
	}
	members := []Subject{{KindAnonymous, anonymousID}}
	if v.UserID != "" {
		v.Links = append(v.Links, linkStamp)
		members = append(members, Subject{KindUser, v.UserID})
	}
	v.UserTraits = Union(ix.Traits[members[0]], ix.Traits[Subject{KindUser, v.UserID}])
	var groupStamp Stamp
	for _, member := range members {
		for _, m := range ix.members[member] {
			if st := ix.Memberships[m]; v.GroupID == "" || st.After(groupStamp) {
				v.GroupID, groupStamp = m.GroupID, st
			}
		}
	}
	if v.GroupID != "" {
		v.Links = append(v.Links, groupStamp)
		v.GroupTraits = ix.Traits[Subject{KindGroup, v.GroupID}]
	}
	return v, true
}
