package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// DefaultAPIVersion is the deployment.js version Segment's integration loaded.
const DefaultAPIVersion = "29.0"

// Entity is a Salesforce object that findOrCreate looks up or creates.
type Entity string

// The entities the destination maps, in the order their sections are emitted.
const (
	EntityContact Entity = "Contact"
	EntityCase    Entity = "Case"
	EntityAccount Entity = "Account"
)

// Settings are the "Salesforce Live Agent" destination settings in the shape
// Segment exports them, plus Prechat's optional extensions.
type Settings struct {
	// Hostname is the host prefix of deployment.js, e.g. "c.la3-c1cs-phx"
	// for https://c.la3-c1cs-phx.salesforceliveagent.com. Required when
	// Products include liveAgent (the default) or embeddedChat, whose init
	// derives from the Live Agent deployment; a Messaging-only deployment
	// leaves it, LiveAgentEndpointURL and DeploymentID out.
	Hostname string `json:"hostname"`
	// LiveAgentEndpointURL is the host prefix of the chat endpoint, e.g.
	// "d.la3-c1cs-phx". Required as Hostname is.
	LiveAgentEndpointURL string `json:"liveAgentEndpointUrl"`
	// DeploymentID is the 15 or 18 character id of the chat deployment.
	// Required as Hostname is.
	DeploymentID string `json:"deploymentId"`
	// OrgID is the 15 or 18 character Salesforce organisation id. Required.
	OrgID string `json:"orgId"`
	// EnableLogging makes the snippet call liveagent.enableLogging() after init.
	EnableLogging bool `json:"enableLogging"`
	// ContactMappings map user traits (Mapping.Trait) onto Contact fields.
	ContactMappings []Mapping `json:"contactMappings"`
	// CaseMappings map the conversation start's properties (Mapping.Property)
	// onto Case fields.
	CaseMappings []Mapping `json:"caseMappings"`
	// AccountMappings map group traits (Mapping.Property, as Segment named it)
	// onto Account fields.
	AccountMappings []Mapping `json:"accountMappings"`

	// ButtonID (extension) lets the snippet start the chat for this button.
	ButtonID string `json:"buttonId,omitempty"`
	// APIVersion (extension) is the deployment.js version. Default: "29.0".
	APIVersion string `json:"apiVersion,omitempty"`

	// Products (extension) are the chat products the documents are rendered
	// for. Default: liveAgent only.
	Products []Product `json:"products,omitempty"`
	// EntityOptions (extension) are the findOrCreate options per entity:
	// saveToTranscript, showOnCreate and linkToEntity.
	EntityOptions map[Entity]EntityOptions `json:"entityOptions,omitempty"`
	// EmbeddedChat (extension) holds the embedded_svc.init arguments;
	// required when Products include embeddedChat.
	EmbeddedChat *EmbeddedChatConfig `json:"embeddedChat,omitempty"`
	// Messaging (extension) describes the Messaging for Web deployment the
	// page initialises, and how the visible pre-chat fields behave.
	Messaging *MessagingConfig `json:"messaging,omitempty"`
}

// settingsFields is Settings without methods, so decoding can embed it
// while reading the mapping arrays itself.
type settingsFields Settings

// Mapping maps one trait or property onto one Salesforce field, through a
// visitor detail with the given label. Segment exports it either as
// {"key": …, "value": {…}} or as the bare inner object; both decode here.
type Mapping struct {
	// Key is the outer key of the {"key", "value"} form; informative only.
	Key string `json:"-"`
	// Wrapped is true for the {"key", "value"} form; errors then name the
	// field as "…[i].value.label", where it was written.
	Wrapped bool `json:"-"`
	// Trait is the user trait read by contact mappings. Dotted paths such as
	// "address.city" read nested objects when no trait has that exact key.
	Trait string `json:"trait,omitempty"`
	// Property is the property read by case mappings (from the conversation
	// start) and account mappings (from the group's traits). Dotted paths work
	// as for Trait.
	Property string `json:"property,omitempty"`
	// Label names the visitor detail; findOrCreate(...).map refers to it.
	Label string `json:"label"`
	// DisplayToAgent shows the detail to the agent.
	DisplayToAgent bool `json:"displayToAgent"`
	// FieldName is the Salesforce field the detail maps to.
	FieldName string `json:"fieldName"`
	// DoFind searches records by this field.
	DoFind bool `json:"doFind"`
	// IsExactMatch makes that search exact.
	IsExactMatch bool `json:"isExactMatch"`
	// DoCreate creates a record with this field when none is found.
	DoCreate bool `json:"doCreate"`

	// MessagingField (extension) is the Messaging for Web hidden pre-chat
	// field (channel variable) that receives the value.
	MessagingField string `json:"messagingField,omitempty"`
	// TranscriptFields (extension) are chat transcript fields that receive
	// the value: addCustomDetail(...).saveToTranscript(field) in Legacy
	// Chat, transcriptFields in Embedded Service Chat.
	TranscriptFields []string `json:"transcriptFields,omitempty"`
}

type bareMapping Mapping

// UnmarshalJSON accepts both mapping item forms.
func (m *Mapping) UnmarshalJSON(b []byte) error {
	mm, err := decodeMapping("mapping", b)
	if err != nil {
		return err
	}
	*m = mm
	return nil
}

// decodeMapping decodes one mapping item of either form; errors are
// FieldErrors under path.
func decodeMapping(path string, b []byte) (Mapping, error) {
	var wrapped map[string]json.RawMessage
	if err := json.Unmarshal(b, &wrapped); err != nil || wrapped == nil {
		return Mapping{}, &FieldError{path, "must be a JSON object"}
	}
	inner, isWrapped := wrapped["value"]
	isWrapped = isWrapped && len(inner) > 0 && inner[0] == '{'
	if isWrapped {
		path += ".value"
	} else {
		inner = b
	}
	var bm bareMapping
	if err := json.Unmarshal(inner, &bm); err != nil {
		return Mapping{}, typeProblem(path+".", err)
	}
	m := Mapping(bm)
	m.Wrapped = isWrapped
	if k, ok := wrapped["key"]; ok && isWrapped {
		if err := json.Unmarshal(k, &m.Key); err != nil {
			return Mapping{}, &FieldError{path[:len(path)-len(".value")] + ".key", "must be a JSON string"}
		}
	}
	return m, nil
}

// typeProblem turns a JSON type error into a FieldError under prefix.
func typeProblem(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &FieldError{Field: prefix + te.Field, Problem: "must be a JSON " + jsonKind(te.Type.Kind().String()) + ", not " + te.Value}
	}
	return fmt.Errorf("%w: %s", ErrInvalidSettings, jsonProblem(err))
}

// Source is the trait or property the mapping reads. Account mappings read
// Property, as Segment's integration did; Trait is accepted there too.
func (m *Mapping) Source() string {
	if m.Property != "" {
		return m.Property
	}
	return m.Trait
}

// Section is one entity's mappings, in document order.
type Section struct {
	Entity   Entity
	Field    string // settings field, e.g. "contactMappings"
	Mappings []Mapping
}

// Sections lists the mapping sections in the order the original integration
// emitted them: Contact, Case, Account.
func (s *Settings) Sections() []Section {
	return []Section{
		{EntityContact, "contactMappings", s.ContactMappings},
		{EntityCase, "caseMappings", s.CaseMappings},
		{EntityAccount, "accountMappings", s.AccountMappings},
	}
}

// ScriptURL is the deployment.js URL:
// https://{hostname}.salesforceliveagent.com/content/g/js/{apiVersion}/deployment.js,
// or "" without a hostname (a Messaging-only deployment).
func (s *Settings) ScriptURL() string {
	if s.Hostname == "" {
		return ""
	}
	v := s.APIVersion
	if v == "" {
		v = DefaultAPIVersion
	}
	return "https://" + s.Hostname + ".salesforceliveagent.com/content/g/js/" + v + "/deployment.js"
}

// ChatURL is the first argument of liveagent.init:
// https://{liveAgentEndpointUrl}.salesforceliveagent.com/chat, or "" without
// a liveAgentEndpointUrl (a Messaging-only deployment).
func (s *Settings) ChatURL() string {
	if s.LiveAgentEndpointURL == "" {
		return ""
	}
	return "https://" + s.LiveAgentEndpointURL + ".salesforceliveagent.com/chat"
}

// ParseSettings decodes a settings file, either the settings object itself or
// Segment's destination export that wraps it in {"settings": {…}}, and
// validates it. Unknown fields are ignored, as Segment's exports carry more
// than this destination reads.
func ParseSettings(data []byte) (*Settings, error) {
	var wrapper struct {
		Settings json.RawMessage `json:"settings"`
	}
	if err := json.Unmarshal(data, &wrapper); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %s", ErrInvalidSettings, jsonProblem(err))
	}
	body := data
	if len(wrapper.Settings) > 0 && wrapper.Settings[0] == '{' {
		body = wrapper.Settings
	}
	var raw struct {
		settingsFields
		ContactMappings json.RawMessage `json:"contactMappings"`
		CaseMappings    json.RawMessage `json:"caseMappings"`
		AccountMappings json.RawMessage `json:"accountMappings"`
		Products        json.RawMessage `json:"products"`
		EntityOptions   json.RawMessage `json:"entityOptions"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		var fe *FieldError
		if err := typeProblem("", err); errors.As(err, &fe) {
			fe.Field = strings.TrimPrefix(fe.Field, "settingsFields.")
			return nil, fe
		}
		return nil, typeProblem("", err)
	}
	s := Settings(raw.settingsFields)
	for _, sec := range []struct {
		field string
		raw   json.RawMessage
		dst   *[]Mapping
	}{
		{"contactMappings", raw.ContactMappings, &s.ContactMappings},
		{"caseMappings", raw.CaseMappings, &s.CaseMappings},
		{"accountMappings", raw.AccountMappings, &s.AccountMappings},
	} {
		if isNull(sec.raw) {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(sec.raw, &items); err != nil {
			return nil, &FieldError{sec.field, "must be a JSON array, not " + jsonValueKind(sec.raw)}
		}
		for i, item := range items {
			m, err := decodeMapping(fmt.Sprintf("%s[%d]", sec.field, i), item)
			if err != nil {
				return nil, err
			}
			*sec.dst = append(*sec.dst, m)
		}
	}
	if err := s.decodeExtensions(raw.Products, raw.EntityOptions); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

var (
	hostPrefix   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	salesforceID = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)
	apiVersion   = regexp.MustCompile(`^[0-9]{1,3}\.[0-9]{1,2}$`)
)

// Validate checks every field and returns the first problem as a
// *FieldError naming the field.
func (s *Settings) Validate() error {
	if err := s.validateProducts(); err != nil {
		return err
	}
	// Legacy Chat needs its deployment; so does Embedded Service Chat, whose
	// init derives from it. Messaging for Web does not.
	liveAgent := s.Targets(ProductLiveAgent) || s.Targets(ProductEmbeddedChat)
	checks := []struct {
		field, value string
		re           *regexp.Regexp
		required     bool
		want         string
	}{
		{"hostname", s.Hostname, hostPrefix, liveAgent, "a host prefix such as c.la3-c1cs-phx (the part before .salesforceliveagent.com)"},
		{"liveAgentEndpointUrl", s.LiveAgentEndpointURL, hostPrefix, liveAgent, "a host prefix such as d.la3-c1cs-phx (the part before .salesforceliveagent.com)"},
		{"deploymentId", s.DeploymentID, salesforceID, liveAgent, "a 15 or 18 character Salesforce id"},
		{"orgId", s.OrgID, salesforceID, true, "a 15 or 18 character Salesforce id"},
		{"apiVersion", s.APIVersion, apiVersion, false, "a version such as 29.0"},
		{"buttonId", s.ButtonID, salesforceID, false, "a 15 or 18 character Salesforce id"},
	}
	for _, c := range checks {
		switch {
		case c.value == "" && c.required:
			return &FieldError{c.field, "required"}
		case c.value != "" && !c.re.MatchString(c.value):
			return &FieldError{c.field, fmt.Sprintf("%q is not %s", truncate(c.value), c.want)}
		}
	}
	labels, messagingFields := map[string]string{}, map[string]string{}
	for _, sec := range s.Sections() {
		for i, m := range sec.Mappings {
			path := fmt.Sprintf("%s[%d]", sec.Field, i)
			if m.Wrapped {
				path += ".value"
			}
			switch {
			case sec.Entity == EntityContact && m.Trait == "":
				return &FieldError{path + ".trait", "required"}
			case sec.Entity != EntityContact && m.Source() == "":
				return &FieldError{path + ".property", "required"}
			case m.Label == "":
				return &FieldError{path + ".label", "required"}
			case m.FieldName == "":
				return &FieldError{path + ".fieldName", "required"}
			}
			if prev, dup := labels[m.Label]; dup {
				return &FieldError{path + ".label", fmt.Sprintf("%q is already the label of %s; findOrCreate(...).map refers to details by label, so labels must be unique", truncate(m.Label), prev)}
			}
			labels[m.Label] = path
			if err := m.validateExtensions(path, messagingFields); err != nil {
				return err
			}
		}
	}
	return s.validateExtensions()
}

// jsonValueKind names the JSON type of a raw value.
func jsonValueKind(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	case "bool":
		return "boolean"
	}
	return k
}
