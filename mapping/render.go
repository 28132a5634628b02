package mapping

import (
	"bytes"
	"encoding/json"
)

// This file renders a document's product-neutral details and entities for
// each chat product. The renderers are pure functions of the document (and
// of the product's own settings); Build stores the Embedded Service Chat and
// Messaging for Web renderings in the document for the products the
// settings target, so the browser snippet only hands them over. The Legacy
// Chat calls are replayed by the snippet from the details and entities
// themselves; LiveAgentCalls is the reference of that replay.

// Call is one liveagent call: a method name and its arguments. It encodes
// as the JSON array [name, args...].
type Call struct {
	Name string
	Args []any
}

// MarshalJSON encodes the call as [name, args...].
func (c Call) MarshalJSON() ([]byte, error) {
	return json.Marshal(append([]any{c.Name}, c.Args...))
}

// LiveAgentCalls lists, in order, the Legacy Chat calls the snippet makes
// for the document: per entity findOrCreate(entity), then for each detail
// addCustomDetail(label, value, displayToAgent) with a saveToTranscript
// per transcript field, and map(fieldName, label, doFind, isExactMatch,
// doCreate); then the entity's saveToTranscript, showOnCreate and
// linkToEntity; setName after the Contact entity; finally init(chatUrl,
// deploymentId, orgId) and enableLogging() when set. Calls made on the
// objects findOrCreate and addCustomDetail return carry only the method
// name.
func LiveAgentCalls(d *Document) []Call {
	var calls []Call
	add := func(name string, args ...any) { calls = append(calls, Call{name, args}) }
	opts := map[Entity]EntityRecord{}
	for _, e := range d.Entities {
		opts[e.EntityName] = e
	}
	var prev Entity
	leave := func() {
		if o, ok := opts[prev]; ok {
			if o.SaveToTranscript != "" {
				add("saveToTranscript", o.SaveToTranscript)
			}
			if o.ShowOnCreate {
				add("showOnCreate")
			}
			if l := o.LinkToEntity; l != nil {
				add("linkToEntity", string(l.EntityName), l.FieldName)
			}
		}
		if prev == EntityContact && d.VisitorName != "" {
			add("setName", d.VisitorName)
		}
	}
	for _, t := range d.Details {
		if t.Entity != prev {
			leave()
			prev = t.Entity
			add("findOrCreate", string(t.Entity))
		}
		add("addCustomDetail", t.Label, t.Value, t.DisplayToAgent)
		for _, f := range t.TranscriptFields {
			add("saveToTranscript", f)
		}
		add("map", t.FieldName, t.Label, t.DoFind, t.IsExactMatch, t.DoCreate)
	}
	leave()
	add("init", d.Chat.ChatURL, d.Chat.DeploymentID, d.Chat.OrgID)
	if d.Chat.EnableLogging {
		add("enableLogging")
	}
	return calls
}

// EmbeddedChat is what Embedded Service Chat receives: the settings the
// snippet sets on embedded_svc.settings, then the embedded_svc.init call.
type EmbeddedChat struct {
	// Init is the embedded_svc.init call; nil when the settings have no
	// embeddedChat block.
	Init *EmbeddedChatInit `json:"init"`
	// Settings are set on embedded_svc.settings before init: the arrays
	// are appended to the page's own, the object's keys merged into the
	// page's.
	Settings EmbeddedChatSettings `json:"settings"`
}

// EmbeddedChatInit is embedded_svc.init(coreUrl, siteUrl, gslbUrl, orgId,
// deploymentName, options).
type EmbeddedChatInit struct {
	CoreURL        string              `json:"coreUrl"`
	SiteURL        string              `json:"siteUrl"`
	GslbURL        string              `json:"gslbUrl"`
	OrgID          string              `json:"orgId"`
	DeploymentName string              `json:"deploymentName"`
	Options        EmbeddedChatOptions `json:"options"`
}

// EmbeddedChatOptions is the last argument of embedded_svc.init, spelt as
// Salesforce's code snippets spell it.
type EmbeddedChatOptions struct {
	BaseLiveAgentContentURL string `json:"baseLiveAgentContentURL"`
	DeploymentID            string `json:"deploymentId"`
	ButtonID                string `json:"buttonId"`
	BaseLiveAgentURL        string `json:"baseLiveAgentURL"`
	EswLiveAgentDevName     string `json:"eswLiveAgentDevName"`
	IsOfflineSupportEnabled bool   `json:"isOfflineSupportEnabled"`
}

// EmbeddedChatSettings are the embedded_svc.settings keys Prechat sets.
type EmbeddedChatSettings struct {
	ExtraPrechatFormDetails []FormDetail  `json:"extraPrechatFormDetails"`
	ExtraPrechatInfo        []PrechatInfo `json:"extraPrechatInfo"`
	// PrepopulatedPrechatFields fills the visible pre-chat form: FirstName,
	// LastName and Email from the Contact details of those fields, Subject
	// from the Case detail of Subject. Left out when none is mapped.
	PrepopulatedPrechatFields map[string]string `json:"prepopulatedPrechatFields,omitempty"`
}

// FormDetail is one extraPrechatFormDetails item: a visitor detail.
type FormDetail struct {
	Label            string   `json:"label"`
	Value            string   `json:"value"`
	DisplayToAgent   bool     `json:"displayToAgent"`
	TranscriptFields []string `json:"transcriptFields"`
}

// PrechatInfo is one extraPrechatInfo item: a findOrCreate of one entity.
type PrechatInfo struct {
	EntityName Entity `json:"entityName"`
	// ShowOnCreate opens the record for the agent.
	ShowOnCreate bool `json:"showOnCreate"`
	// SaveToTranscript is the transcript field of the record Id; "" does
	// not attach it.
	SaveToTranscript  string           `json:"saveToTranscript"`
	LinkToEntityName  Entity           `json:"linkToEntityName,omitempty"`
	LinkToEntityField string           `json:"linkToEntityField,omitempty"`
	EntityFieldMaps   []EntityFieldMap `json:"entityFieldMaps"`
}

// EntityFieldMap maps a form detail, by label, onto a field of the entity.
type EntityFieldMap struct {
	FieldName    string `json:"fieldName"`
	Label        string `json:"label"`
	DoFind       bool   `json:"doFind"`
	IsExactMatch bool   `json:"isExactMatch"`
	DoCreate     bool   `json:"doCreate"`
}

// Messaging is what Messaging for Web receives, after
// onEmbeddedMessagingReady and before the conversation starts.
type Messaging struct {
	// HiddenFields is the argument of prechatAPI.setHiddenPrechatFields:
	// each detail with a messagingField, by that name. Left out when empty.
	HiddenFields map[string]string `json:"hiddenFields,omitempty"`
	// VisibleFields is the argument of prechatAPI.setVisiblePrechatFields:
	// the standard fields _firstName, _lastName, _email (Contact details of
	// FirstName, LastName, Email) and _subject (Case detail of Subject).
	// Left out when empty.
	VisibleFields map[string]VisibleField `json:"visibleFields,omitempty"`
}

// VisibleField is one visible pre-chat field's value.
type VisibleField struct {
	Value               string `json:"value"`
	IsEditableByEndUser bool   `json:"isEditableByEndUser"`
}

// standardField names the pre-chat form's standard fields of an entity
// field: the Embedded Service Chat prepopulatedPrechatFields key and the
// Messaging for Web visible field.
type standardField struct {
	embedded, messaging string
}

var standardFields = map[Entity]map[string]standardField{
	EntityContact: {
		"FirstName": {"FirstName", "_firstName"},
		"LastName":  {"LastName", "_lastName"},
		"Email":     {"Email", "_email"},
	},
	EntityCase: {
		"Subject": {"Subject", "_subject"},
	},
}

// EmbeddedChatOf renders the document for Embedded Service Chat: a form
// detail per detail and a prechat info per entity, whose field maps are its
// details', in document order; values as text (see Text).
func EmbeddedChatOf(d *Document, init *EmbeddedChatInit) *EmbeddedChat {
	out := &EmbeddedChat{Init: init, Settings: EmbeddedChatSettings{
		ExtraPrechatFormDetails: []FormDetail{},
		ExtraPrechatInfo:        []PrechatInfo{},
	}}
	st := &out.Settings
	infos := map[Entity]int{}
	for _, e := range d.Entities {
		info := PrechatInfo{EntityName: e.EntityName, ShowOnCreate: e.ShowOnCreate, SaveToTranscript: e.SaveToTranscript, EntityFieldMaps: []EntityFieldMap{}}
		if l := e.LinkToEntity; l != nil {
			info.LinkToEntityName, info.LinkToEntityField = l.EntityName, l.FieldName
		}
		infos[e.EntityName] = len(st.ExtraPrechatInfo)
		st.ExtraPrechatInfo = append(st.ExtraPrechatInfo, info)
	}
	for _, t := range d.Details {
		v := Text(t.Value)
		tf := t.TranscriptFields
		if tf == nil {
			tf = []string{}
		}
		st.ExtraPrechatFormDetails = append(st.ExtraPrechatFormDetails, FormDetail{Label: t.Label, Value: v, DisplayToAgent: t.DisplayToAgent, TranscriptFields: tf})
		i, ok := infos[t.Entity]
		if !ok {
			// A document without entities (built before they existed).
			i = len(st.ExtraPrechatInfo)
			infos[t.Entity] = i
			st.ExtraPrechatInfo = append(st.ExtraPrechatInfo, PrechatInfo{EntityName: t.Entity, EntityFieldMaps: []EntityFieldMap{}})
		}
		st.ExtraPrechatInfo[i].EntityFieldMaps = append(st.ExtraPrechatInfo[i].EntityFieldMaps, EntityFieldMap{
			FieldName: t.FieldName, Label: t.Label, DoFind: t.DoFind, IsExactMatch: t.IsExactMatch, DoCreate: t.DoCreate,
		})
		if f, ok := standardFields[t.Entity][t.FieldName]; ok {
			if st.PrepopulatedPrechatFields == nil {
				st.PrepopulatedPrechatFields = map[string]string{}
			}
			if _, set := st.PrepopulatedPrechatFields[f.embedded]; !set {
				st.PrepopulatedPrechatFields[f.embedded] = v
			}
		}
	}
	return out
}

// MessagingOf renders the document for Messaging for Web: hidden fields by
// messagingField, visible standard fields with isEditableByEndUser set to
// editable; values as text (see Text). When two details feed the same
// standard field, the first wins.
func MessagingOf(d *Document, editable bool) *Messaging {
	out := &Messaging{}
	for _, t := range d.Details {
		v := Text(t.Value)
		if t.MessagingField != "" {
			if out.HiddenFields == nil {
				out.HiddenFields = map[string]string{}
			}
			out.HiddenFields[t.MessagingField] = v
		}
		if f, ok := standardFields[t.Entity][t.FieldName]; ok {
			if out.VisibleFields == nil {
				out.VisibleFields = map[string]VisibleField{}
			}
			if _, set := out.VisibleFields[f.messaging]; !set {
				out.VisibleFields[f.messaging] = VisibleField{Value: v, IsEditableByEndUser: editable}
			}
		}
	}
	return out
}

// Text is a detail value as the successor products take it, a string:
// strings as they are, numbers as JavaScript prints them, true and false,
// and objects and arrays as compact JSON.
func Text(raw json.RawMessage) string {
	if s, err := text(raw); err == nil {
		return s
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// Preview builds the document of a visitor who has every mapped trait and
// property, each valued by a placeholder that names its source ("<trait
// email>", "<property subject>", "<group trait website>"), so that the
// renderings show what each product receives under these settings.
func (s *Settings) Preview() Document {
	placeholder := func(kind, name string) Trait {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode("<" + kind + " " + name + ">")
		return Trait{Value: bytes.TrimSpace(b.Bytes())}
	}
	v := Visitor{
		AnonymousID:  "preview",
		Conversation: Conversation{Stamp: Stamp{MessageID: "preview"}, Properties: Object{}},
		UserTraits:   Traits{},
		GroupTraits:  Traits{},
	}
	for _, m := range s.ContactMappings {
		v.UserTraits[m.Trait] = placeholder("trait", m.Trait)
	}
	if len(s.ContactMappings) > 0 {
		for _, k := range []string{"firstName", "lastName"} {
			if _, ok := v.UserTraits[k]; !ok {
				v.UserTraits[k] = placeholder("trait", k)
			}
		}
	}
	for _, m := range s.CaseMappings {
		v.Conversation.Properties[m.Source()] = placeholder("property", m.Source()).Value
	}
	for _, m := range s.AccountMappings {
		v.GroupTraits[m.Source()] = placeholder("group trait", m.Source())
	}
	return s.Build(v, 0)
}
