package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DocumentVersion is the version of the document JSON this package builds.
const DocumentVersion = 1

// Document is the materialised pre-chat document: everything the snippet
// needs to replay, in the browser, the calls Segment's integration made.
// Only mapped fields are in it.
//
// Times are event times, not wall-clock times, so that rebuilding a document
// from the same events (a replay) yields the same bytes.
type Document struct {
	Version     int    `json:"version"`
	AnonymousID string `json:"anonymousId"`
	UserID      string `json:"userId,omitempty"`
	// UserVerified is true when the link to UserID was made by an event
	// carrying a valid identity proof (see docs/trust-model.md).
	UserVerified          bool   `json:"userVerified,omitempty"`
	GroupID               string `json:"groupId,omitempty"`
	ConversationMessageID string `json:"conversationMessageId"`
	Chat                  Chat   `json:"chat"`
	// Details are in call order: Contact, then Case, then Account; the
	// snippet calls findOrCreate(entity) whenever the entity changes, then
	// addCustomDetail and .map for each detail.
	Details []Detail `json:"details"`
	// Entities are the entities of Details, in the same order, with their
	// findOrCreate options (saveToTranscript, showOnCreate, linkToEntity).
	// Their field maps are the details' fieldName … doCreate.
	Entities []EntityRecord `json:"entities"`
	// VisitorName is the setName argument: firstName + " " + lastName, set
	// when contact mappings exist, the visitor has user traits, and both
	// traits are truthy (as JavaScript sees them).
	VisitorName string `json:"visitorName,omitempty"`
	// EmbeddedChat is the Embedded Service Chat rendering of the details
	// and entities (EmbeddedChatOf), present when the settings target
	// embeddedChat.
	EmbeddedChat *EmbeddedChat `json:"embeddedChat,omitempty"`
	// Messaging is the Messaging for Web rendering of the details
	// (MessagingOf), present when the settings target messaging.
	Messaging *Messaging `json:"messaging,omitempty"`
	Warnings  []Warning  `json:"warnings"`
	// Applied lists the messageIds of the events the document reflects.
	Applied []string `json:"applied"`
	// Complete is true in stored documents; the API answers false when a
	// read-your-writes wait timed out before the requested events applied.
	Complete bool `json:"complete"`
	// CreatedAt is the conversation start's event time.
	CreatedAt time.Time `json:"createdAt"`
	// UpdatedAt is the latest event time among the events in Applied.
	UpdatedAt time.Time `json:"updatedAt"`
	// ExpiresAt is CreatedAt plus the document TTL; expired documents are
	// never served and are deleted.
	ExpiresAt time.Time `json:"expiresAt"`
}

// Chat holds the liveagent.init arguments and the deployment script.
type Chat struct {
	ScriptURL     string `json:"scriptUrl"`
	ChatURL       string `json:"chatUrl"`
	DeploymentID  string `json:"deploymentId"`
	OrgID         string `json:"orgId"`
	EnableLogging bool   `json:"enableLogging"`
	ButtonID      string `json:"buttonId,omitempty"`
}

// Detail is one addCustomDetail(label, value, displayToAgent) call and the
// findOrCreate(entity).map(fieldName, label, doFind, isExactMatch, doCreate)
// that follows it.
type Detail struct {
	Entity         Entity          `json:"entity"`
	Label          string          `json:"label"`
	Value          json.RawMessage `json:"value"`
	DisplayToAgent bool            `json:"displayToAgent"`
	FieldName      string          `json:"fieldName"`
	DoFind         bool            `json:"doFind"`
	IsExactMatch   bool            `json:"isExactMatch"`
	DoCreate       bool            `json:"doCreate"`
	// TranscriptFields are transcript fields that receive the value.
	TranscriptFields []string `json:"transcriptFields,omitempty"`
	// MessagingField is the Messaging for Web hidden pre-chat field that
	// receives the value.
	MessagingField string `json:"messagingField,omitempty"`
	// Verified is true when the value comes from a verified user's or
	// group's shared profile, false when this visitor's own events sent it.
	Verified bool `json:"verified,omitempty"`
}

// EntityRecord is one findOrCreate(entityName) of a document and its options.
type EntityRecord struct {
	EntityName       Entity      `json:"entityName"`
	SaveToTranscript string      `json:"saveToTranscript,omitempty"`
	ShowOnCreate     bool        `json:"showOnCreate,omitempty"`
	LinkToEntity     *EntityLink `json:"linkToEntity,omitempty"`
}

// Warning explains why something the settings map is not in the document.
type Warning struct {
	// Code is stable: no_user_traits, no_properties, no_group_traits,
	// missing_value, name_not_text, unlinked.
	Code    string `json:"code"`
	Entity  Entity `json:"entity,omitempty"`
	Label   string `json:"label,omitempty"`
	Message string `json:"message"`
}

// Visitor is the state a document is built from.
type Visitor struct {
	AnonymousID string
	// UserID is the user linked to the visitor (latest link wins), if any.
	UserID string
	// UserVerified is true when that link was made by an event with a
	// valid identity proof: only then are UserTraits and the group's shared
	// traits more than what this visitor sent itself.
	UserVerified bool
	// GroupID is the visitor's latest group, if any.
	GroupID string
	// Conversation is the visitor's latest conversation start.
	Conversation Conversation
	// UserTraits are the visitor's own traits united with its verified
	// user's traits (Union); empty when no identify was seen.
	UserTraits Traits
	// GroupTraits are the group traits this visitor sent itself, united
	// with the group's shared traits when its verified user is a member;
	// empty when no group was seen.
	GroupTraits Traits
	// Links are the stamps of the identity link and group membership used,
	// so that the document lists them in Applied.
	Links []Stamp
	// GroupShared is true when GroupTraits hold the group's shared traits:
	// the verified user is a member of GroupID.
	GroupShared bool
}

// Shares names the shared profiles the visitor's document is built from
// ("" when none): its verified user, and the group whose shared traits
// that user's membership brings. A change to either changes the document;
// a change to any other user or group cannot.
func (v Visitor) Shares() (user, group string) {
	if v.UserVerified {
		user = v.UserID
	}
	if v.GroupShared {
		group = v.GroupID
	}
	return user, group
}

// Conversation is a "Live Chat Conversation Started" event.
type Conversation struct {
	Stamp
	Properties Object
	// TokenHash is the start's context.prechat.tokenHash (Event.Prechat.TokenHash):
	// the document is served only with the secret it hashes. It is stored
	// beside the document, never in it.
	TokenHash string
}

// Build makes the visitor's document under these settings, following the
// original integration's order and rules (see the package tests' testdata).
func (s *Settings) Build(v Visitor, ttl time.Duration) Document {
	b := builder{
		doc: Document{
			Version:               DocumentVersion,
			AnonymousID:           v.AnonymousID,
			UserID:                v.UserID,
			UserVerified:          v.UserVerified,
			GroupID:               v.GroupID,
			ConversationMessageID: v.Conversation.MessageID,
			Chat: Chat{
				ScriptURL:     s.ScriptURL(),
				ChatURL:       s.ChatURL(),
				DeploymentID:  s.DeploymentID,
				OrgID:         s.OrgID,
				EnableLogging: s.EnableLogging,
				ButtonID:      s.ButtonID,
			},
			Details:   []Detail{},
			Entities:  []EntityRecord{},
			Warnings:  []Warning{},
			Complete:  true,
			CreatedAt: v.Conversation.At,
			ExpiresAt: v.Conversation.At.Add(ttl),
		},
		applied: map[string]time.Time{},
	}
	b.use(v.Conversation.Stamp)
	for _, l := range v.Links {
		b.use(l)
	}
	properties := make(Traits, len(v.Conversation.Properties))
	for k, val := range v.Conversation.Properties {
		properties[k] = Trait{Value: val, Stamp: v.Conversation.Stamp}
	}
	sources := map[Entity]struct {
		data                Traits
		code, kind, missing string
	}{
		EntityContact: {v.UserTraits, "no_user_traits", "trait", "no user traits are known for this visitor: identify it before the conversation starts"},
		EntityCase:    {properties, "no_properties", "property", "the conversation start carries no properties"},
		EntityAccount: {v.GroupTraits, "no_group_traits", "property", "no group traits are known for this visitor: call group before the conversation starts"},
	}
	for _, sec := range s.Sections() {
		if len(sec.Mappings) == 0 {
			continue
		}
		src := sources[sec.Entity]
		if len(src.data) == 0 {
			b.warn(Warning{Code: src.code, Entity: sec.Entity, Message: fmt.Sprintf("%s: %s mappings are set but %s", sec.Entity, sec.Field, src.missing)})
			continue
		}
		for _, m := range sec.Mappings {
			b.detail(sec.Entity, src.kind, m, src.data)
		}
		if sec.Entity == EntityContact {
			b.visitorName(v.UserTraits)
		}
	}
	b.entities(s.EntityOptions)
	if s.Targets(ProductEmbeddedChat) {
		b.doc.EmbeddedChat = EmbeddedChatOf(&b.doc, s.EmbeddedChatInit())
	}
	if s.Targets(ProductMessaging) {
		b.doc.Messaging = MessagingOf(&b.doc, s.Messaging.Editable())
	}
	b.doc.Applied = make([]string, 0, len(b.applied))
	for id, at := range b.applied {
		b.doc.Applied = append(b.doc.Applied, id)
		if at.After(b.doc.UpdatedAt) {
			b.doc.UpdatedAt = at
		}
	}
	slices.Sort(b.doc.Applied)
	return b.doc
}

type builder struct {
	doc     Document
	applied map[string]time.Time
}

func (b *builder) use(s Stamp) {
	if s.MessageID != "" {
		b.applied[s.MessageID] = s.At
	}
}

func (b *builder) warn(w Warning) { b.doc.Warnings = append(b.doc.Warnings, w) }

func (b *builder) detail(e Entity, kind string, m Mapping, data Traits) {
	source := m.Source()
	t, ok := Lookup(data, source)
	if !ok || isNull(t.Value) {
		b.warn(Warning{Code: "missing_value", Entity: e, Label: m.Label,
			Message: fmt.Sprintf("%s: %s %q has no value, so the detail %q is left out", e, kind, source, m.Label)})
		return
	}
	b.use(t.Stamp)
	b.doc.Details = append(b.doc.Details, Detail{
		Entity:           e,
		Label:            m.Label,
		Value:            json.RawMessage(t.Value),
		DisplayToAgent:   m.DisplayToAgent,
		FieldName:        m.FieldName,
		DoFind:           m.DoFind,
		IsExactMatch:     m.IsExactMatch,
		DoCreate:         m.DoCreate,
		TranscriptFields: slices.Clone(m.TranscriptFields),
		MessagingField:   m.MessagingField,
		Verified:         t.Verified,
	})
}

// entities lists the entities of the details in order, with their options.
// A link to an entity the document has no details for is left out with an
// unlinked warning: findOrCreate creates no such record to link to.
func (b *builder) entities(opts map[Entity]EntityOptions) {
	have := map[Entity]bool{}
	for _, d := range b.doc.Details {
		if have[d.Entity] {
			continue
		}
		have[d.Entity] = true
		b.doc.Entities = append(b.doc.Entities, EntityRecord{EntityName: d.Entity})
	}
	for i := range b.doc.Entities {
		e := &b.doc.Entities[i]
		o := opts[e.EntityName]
		e.SaveToTranscript, e.ShowOnCreate = o.SaveToTranscript, o.ShowOnCreate
		if l := o.LinkToEntity; l != nil {
			if !have[l.EntityName] {
				b.warn(Warning{Code: "unlinked", Entity: e.EntityName,
					Message: fmt.Sprintf("%s: linkToEntity(%q, %q) is left out: the document has no %s details, so no %s record is created", e.EntityName, l.EntityName, l.FieldName, l.EntityName, l.EntityName)})
				continue
			}
			link := *l
			e.LinkToEntity = &link
		}
	}
}

// visitorName applies the integration's rule: setName(firstName + " " +
// lastName) when both traits are truthy.
func (b *builder) visitorName(traits Traits) {
	first, fok := traits["firstName"]
	last, lok := traits["lastName"]
	if !fok || !lok || !truthy(first.Value) || !truthy(last.Value) {
		return
	}
	fs, ferr := text(first.Value)
	ls, lerr := text(last.Value)
	if ferr != nil || lerr != nil {
		b.warn(Warning{Code: "name_not_text", Entity: EntityContact,
			Message: "Contact: firstName and lastName must be strings or numbers for setName; the visitor name is left out"})
		return
	}
	b.use(first.Stamp)
	b.use(last.Stamp)
	b.doc.VisitorName = fs + " " + ls
}

// Lookup finds a trait by key, or by a dotted path into nested objects when
// no trait has that exact key ("address.city" reads {"address":{"city":…}}).
// The stamp is the top-level trait's.
func Lookup(data Traits, path string) (Trait, bool) {
	if t, ok := data[path]; ok {
		return t, true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		top, ok := data[path[:i]]
		if !ok {
			continue
		}
		if v, ok := descend(top.Value, strings.Split(path[i+1:], ".")); ok {
			return Trait{Value: v, Stamp: top.Stamp, Verified: top.Verified}, true
		}
	}
	return Trait{}, false
}

func descend(raw []byte, keys []string) ([]byte, bool) {
	for _, k := range keys {
		var obj map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
			return nil, false
		}
		v, ok := obj[k]
		if !ok {
			return nil, false
		}
		raw = v
	}
	return raw, true
}

// truthy is JavaScript truthiness of a JSON value: false, null, 0, -0 and
// "" are falsy; every other string (even "0"), object and array is truthy.
func truthy(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return false
	case raw[0] == '"':
		return string(raw) != `""`
	case raw[0] == '{' || raw[0] == '[' || string(raw) == "true":
		return true
	case string(raw) == "false" || string(raw) == "null":
		return false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return err != nil || f != 0
}

// text renders a string or number as JavaScript's string concatenation
// would (Number.prototype.toString: exponent form from 1e21 and below 1e-6).
func text(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return "", err
	}
	if a := math.Abs(f); a != 0 && (a >= 1e21 || a < 1e-6) {
		mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
		sign, digits := exp[:1], strings.TrimLeft(exp[1:], "0")
		return mant + "e" + sign + digits, nil
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}
