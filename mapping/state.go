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
//
// Trust (see docs/trust-model.md): a user's traits and a group's
// shared traits (Observer empty) are written only by verified events, so
// they may reach every visitor verified as that user or member. What an
// unverified visitor says about a group is kept apart, under Observer = the
// visitor's anonymousId, and counts for that visitor's own document only.
// An anonymous visitor's traits are what unverified events carrying its
// anonymousId said. A verified event's traits and membership are its
// user's: they reach the visitor while its latest link is to that user,
// and no longer once the visitor is linked to another user (as
// analytics.js drops a browser's traits when the userId changes).
type Subject struct {
	Kind Kind
	ID   string
	// Observer is empty for a shared profile; for a group it may be the
	// anonymousId of the visitor whose own, unverified view of the group
	// this is.
	Observer string
}

// Link ties an anonymous visitor to a user.
type Link struct {
	AnonymousID string
	UserID      string
}

// LinkState is a link's latest stamp and whether any event that made it
// carried a valid identity proof for the user. Both merge commutatively
// (latest stamp, logical or), so any order of the same events gives the
// same link.
type LinkState struct {
	Stamp
	// Verified is true once an event with a valid proof for the user made
	// the link: only then do the user's traits and memberships reach the
	// visitor's document.
	Verified bool
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
	Links         map[Link]LinkState
	Memberships   map[Membership]Stamp
	Conversations map[string]Conversation
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		Traits:        map[Subject]Traits{},
		Links:         map[Link]LinkState{},
		Memberships:   map[Membership]Stamp{},
		Conversations: map[string]Conversation{},
	}
}

// Apply folds one valid event into the state, as the destination's handlers
// would, under the trust model (see Subject): identify caches traits, group
// caches group traits and membership, alias and any event carrying both ids
// link them, and the conversation start is kept per anonymousId. Other
// events change nothing but links. fallback is the event time when the
// event carries none (see Event.Time).
//
// What the event says always counts for its own anonymousId. It reaches the
// shared profile of its userId, of its group and of the user's memberships
// only when e.Verified (Policy.Admit sets it from the event's identity
// proof); an unverified event without an anonymousId changes nothing.
func (s *State) Apply(e *Event, fallback time.Time) {
	st := e.Stamp(fallback)
	verified := e.Verified && e.UserID != ""
	anon := Subject{Kind: KindAnonymous, ID: e.AnonymousID}
	if e.AnonymousID != "" && e.UserID != "" {
		s.link(Link{e.AnonymousID, e.UserID}, st, verified)
	}
	switch {
	case e.Type == TypeIdentify:
		switch {
		case verified:
			s.traits(Subject{Kind: KindUser, ID: e.UserID}, e.Traits, st)
		case e.AnonymousID != "":
			s.traits(anon, e.Traits, st)
		}
	case e.Type == TypeGroup:
		switch {
		case verified:
			s.traits(Subject{Kind: KindGroup, ID: e.GroupID}, e.Traits, st)
			putStamp(s.Memberships, Membership{Subject{Kind: KindUser, ID: e.UserID}, e.GroupID}, st)
		case e.AnonymousID != "":
			s.traits(Subject{Kind: KindGroup, ID: e.GroupID, Observer: e.AnonymousID}, e.Traits, st)
			putStamp(s.Memberships, Membership{anon, e.GroupID}, st)
		}
	case e.Type == TypeAlias:
		// An unverified alias may only name the sender's own visitor: it
		// shows the userId in that visitor's document and nothing more.
		if verified || e.PreviousID == e.AnonymousID {
			s.link(Link{e.PreviousID, e.UserID}, st, verified)
		}
	case e.IsConversationStart():
		if cur, ok := s.Conversations[e.AnonymousID]; !ok || st.After(cur.Stamp) {
			s.Conversations[e.AnonymousID] = Conversation{Stamp: st, Properties: e.Properties, TokenHash: e.Prechat.TokenHash}
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

func (s *State) link(l Link, st Stamp, verified bool) {
	if l.AnonymousID == "" || l.UserID == "" {
		return
	}
	cur, ok := s.Links[l]
	if !ok || st.After(cur.Stamp) {
		cur.Stamp = st
	}
	cur.Verified = cur.Verified || verified
	s.Links[l] = cur
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
	var link LinkState
	for _, l := range ix.links[anonymousID] {
		if st := ix.Links[l]; v.UserID == "" || st.After(link.Stamp) {
			v.UserID, link = l.UserID, st
		}
	}
	own := Subject{Kind: KindAnonymous, ID: anonymousID}
	members := []Subject{own}
	var user Traits
	if v.UserID != "" {
		v.Links = append(v.Links, link.Stamp)
		if link.Verified {
			v.UserVerified = true
			u := Subject{Kind: KindUser, ID: v.UserID}
			members = append(members, u)
			user = verifiedCopy(ix.Traits[u])
		}
	}
	// The verified copy first: where both hold the same write, it shows as
	// verified.
	v.UserTraits = Union(user, ix.Traits[own])
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
		var shared Traits
		if v.UserVerified {
			if _, ok := ix.Memberships[Membership{members[1], v.GroupID}]; ok {
				v.GroupShared = true
				shared = verifiedCopy(ix.Traits[Subject{Kind: KindGroup, ID: v.GroupID}])
			}
		}
		v.GroupTraits = Union(shared, ix.Traits[Subject{Kind: KindGroup, ID: v.GroupID, Observer: anonymousID}])
	}
	return v, true
}

// verifiedCopy marks a shared profile's traits as verified (Trait.Verified).
func verifiedCopy(t Traits) Traits {
	if len(t) == 0 {
		return nil
	}
	out := make(Traits, len(t))
	for k, v := range t {
		v.Verified = true
		out[k] = v
	}
	return out
}
