package mapping

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Product is a Salesforce chat product a document is rendered for.
type Product string

// The products Prechat renders documents for. Legacy Chat was retired on
// 2026-02-14; Embedded Service Chat and Messaging for Web succeed it.
const (
	// ProductLiveAgent is Legacy Chat: liveagent from deployment.js.
	ProductLiveAgent Product = "liveAgent"
	// ProductEmbeddedChat is Embedded Service Chat: embedded_svc.settings
	// set before embedded_svc.init.
	ProductEmbeddedChat Product = "embeddedChat"
	// ProductMessaging is Messaging for Web (Enhanced Chat):
	// embeddedservice_bootstrap.prechatAPI after onEmbeddedMessagingReady.
	ProductMessaging Product = "messaging"
)

// AllProducts lists the products in the order they are described.
var AllProducts = []Product{ProductLiveAgent, ProductEmbeddedChat, ProductMessaging}

// DefaultGslbURL is the gslbURL argument of embedded_svc.init that
// Salesforce's generated code snippets pass.
const DefaultGslbURL = "https://service.force.com"

// EntityOptions are the findOrCreate(entity) options of one entity.
type EntityOptions struct {
	// SaveToTranscript is the transcript field that receives the record's
	// Id, e.g. "ContactId" (findOrCreate(...).saveToTranscript).
	SaveToTranscript string `json:"saveToTranscript,omitempty"`
	// ShowOnCreate opens the record for the agent (findOrCreate(...).showOnCreate()).
	ShowOnCreate bool `json:"showOnCreate,omitempty"`
	// LinkToEntity links the record to another entity's record through one
	// of this record's fields (findOrCreate(...).linkToEntity).
	LinkToEntity *EntityLink `json:"linkToEntity,omitempty"`
}

// EntityLink names the parent record of linkToEntity(entityName, fieldName).
type EntityLink struct {
	EntityName Entity `json:"entityName"`
	FieldName  string `json:"fieldName"`
}

// EmbeddedChatConfig are the arguments of embedded_svc.init(coreURL,
// siteURL, gslbURL, orgId, deploymentName, {…}) that the snippet calls
// once the settings are set. orgId and deploymentId are the settings'.
type EmbeddedChatConfig struct {
	// CoreURL is the org's My Domain URL, e.g. https://acme.my.salesforce.com. Required.
	CoreURL string `json:"coreUrl"`
	// SiteURL is the Experience Cloud site of the deployment. Required.
	SiteURL string `json:"siteUrl"`
	// GslbURL defaults to https://service.force.com.
	GslbURL string `json:"gslbUrl,omitempty"`
	// DeploymentName is the Embedded Service deployment's API name. Required.
	DeploymentName string `json:"deploymentName"`
	// ButtonID is the chat button; default: the settings' buttonId. One of
	// them is required.
	ButtonID string `json:"buttonId,omitempty"`
	// EswLiveAgentDevName is the deployment's Live Agent API name
	// (EmbeddedServiceLiveAgent_Parent…). Required.
	EswLiveAgentDevName string `json:"eswLiveAgentDevName"`
	// BaseLiveAgentURL defaults to the settings' chat URL,
	// https://{liveAgentEndpointUrl}.salesforceliveagent.com/chat.
	BaseLiveAgentURL string `json:"baseLiveAgentUrl,omitempty"`
	// BaseLiveAgentContentURL defaults to
	// https://{hostname}.salesforceliveagent.com/content.
	BaseLiveAgentContentURL string `json:"baseLiveAgentContentUrl,omitempty"`
	// IsOfflineSupportEnabled is passed through.
	IsOfflineSupportEnabled bool `json:"isOfflineSupportEnabled,omitempty"`
}

// MessagingConfig describes the Messaging for Web deployment. The page
// keeps its own embeddedservice_bootstrap.init call; these values are shown
// by "processor settings check" so the page can be checked against them.
type MessagingConfig struct {
	// OrgID defaults to the settings' orgId.
	OrgID string `json:"orgId,omitempty"`
	// DeploymentName is the Embedded Service deployment's API name.
	DeploymentName string `json:"deploymentName,omitempty"`
	// SiteURL is the deployment's site URL.
	SiteURL string `json:"siteUrl,omitempty"`
	// SCRT2URL is the scrt2URL option of init.
	SCRT2URL string `json:"scrt2Url,omitempty"`
	// VisibleFieldsEditable is isEditableByEndUser of the visible
	// pre-chat fields the snippet fills. Default: true.
	VisibleFieldsEditable *bool `json:"visibleFieldsEditable,omitempty"`
}

// Editable reports isEditableByEndUser for the visible pre-chat fields.
func (m *MessagingConfig) Editable() bool {
	return m == nil || m.VisibleFieldsEditable == nil || *m.VisibleFieldsEditable
}

// Targets reports whether documents are rendered for the product.
func (s *Settings) Targets(p Product) bool {
	if len(s.Products) == 0 {
		return p == ProductLiveAgent
	}
	return slices.Contains(s.Products, p)
}

// Targeted lists the products documents are rendered for, in AllProducts
// order.
func (s *Settings) Targeted() []Product {
	var out []Product
	for _, p := range AllProducts {
		if s.Targets(p) {
			out = append(out, p)
		}
	}
	return out
}

// EmbeddedChatInit returns the embedded_svc.init arguments, with the
// defaults filled in, or nil when embeddedChat is not targeted.
func (s *Settings) EmbeddedChatInit() *EmbeddedChatInit {
	c := s.EmbeddedChat
	if !s.Targets(ProductEmbeddedChat) || c == nil {
		return nil
	}
	in := &EmbeddedChatInit{
		CoreURL:        c.CoreURL,
		SiteURL:        c.SiteURL,
		GslbURL:        or(c.GslbURL, DefaultGslbURL),
		OrgID:          s.OrgID,
		DeploymentName: c.DeploymentName,
		Options: EmbeddedChatOptions{
			BaseLiveAgentContentURL: or(c.BaseLiveAgentContentURL, "https://"+s.Hostname+".salesforceliveagent.com/content"),
			DeploymentID:            s.DeploymentID,
			ButtonID:                or(c.ButtonID, s.ButtonID),
			BaseLiveAgentURL:        or(c.BaseLiveAgentURL, s.ChatURL()),
			EswLiveAgentDevName:     c.EswLiveAgentDevName,
			IsOfflineSupportEnabled: c.IsOfflineSupportEnabled,
		},
	}
	return in
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

var (
	// apiName is a Salesforce field or parameter API name.
	apiName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)
	// devName is a Salesforce developer (API) name of a deployment.
	devName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)
)

// validateProducts checks the products list.
func (s *Settings) validateProducts() error {
	if s.Products != nil && len(s.Products) == 0 {
		return &FieldError{"products", "lists no product; leave it out to target liveAgent only"}
	}
	for i, p := range s.Products {
		path := fmt.Sprintf("products[%d]", i)
		if !slices.Contains(AllProducts, p) {
			return &FieldError{path, fmt.Sprintf("%q is not a product; use liveAgent, embeddedChat or messaging", truncate(string(p)))}
		}
		if slices.Index(s.Products, p) < i {
			return &FieldError{path, fmt.Sprintf("%q is listed twice", p)}
		}
	}
	return nil
}

// validateExtensions checks a mapping's messagingField (unique across the
// settings: seen maps names to the path that holds them) and
// transcriptFields.
func (m *Mapping) validateExtensions(path string, seen map[string]string) error {
	if f := m.MessagingField; f != "" {
		if !apiName.MatchString(f) {
			return &FieldError{path + ".messagingField", fmt.Sprintf("%q is not a channel variable name (letters, digits and underscores, starting with a letter); the standard visible fields _firstName, _lastName, _email and _subject follow from fieldName", truncate(f))}
		}
		if prev, dup := seen[f]; dup {
			return &FieldError{path + ".messagingField", fmt.Sprintf("%q is already the messagingField of %s", f, prev)}
		}
		seen[f] = path
	}
	for i, f := range m.TranscriptFields {
		p := fmt.Sprintf("%s.transcriptFields[%d]", path, i)
		if !apiName.MatchString(f) {
			return &FieldError{p, fmt.Sprintf("%q is not a transcript field API name such as Email__c", truncate(f))}
		}
		if slices.Index(m.TranscriptFields, f) < i {
			return &FieldError{p, fmt.Sprintf("%q is listed twice", f)}
		}
	}
	return nil
}

// validateExtensions checks entityOptions, embeddedChat and messaging.
func (s *Settings) validateExtensions() error {
	mapped := map[Entity]string{}
	for _, sec := range s.Sections() {
		if len(sec.Mappings) > 0 {
			mapped[sec.Entity] = sec.Field
		}
	}
	fields := map[Entity]string{EntityContact: "contactMappings", EntityCase: "caseMappings", EntityAccount: "accountMappings"}
	keys := make([]string, 0, len(s.EntityOptions))
	for e := range s.EntityOptions {
		keys = append(keys, string(e))
	}
	for _, k := range entityOrder(keys) {
		e, o := Entity(k), s.EntityOptions[Entity(k)]
		path := "entityOptions." + k
		switch {
		case fields[e] == "":
			return &FieldError{path, fmt.Sprintf("%q is not an entity Prechat maps; use Contact, Case or Account", truncate(k))}
		case mapped[e] == "":
			return &FieldError{path, fmt.Sprintf("%s is empty, so findOrCreate(%q) never runs", fields[e], e)}
		case o.SaveToTranscript != "" && !apiName.MatchString(o.SaveToTranscript):
			return &FieldError{path + ".saveToTranscript", fmt.Sprintf("%q is not a transcript field API name such as ContactId", truncate(o.SaveToTranscript))}
		}
		if l := o.LinkToEntity; l != nil {
			lp := path + ".linkToEntity"
			switch {
			case l.EntityName == "":
				return &FieldError{lp + ".entityName", "required"}
			case fields[l.EntityName] == "":
				return &FieldError{lp + ".entityName", fmt.Sprintf("%q is not an entity Prechat maps; use Contact, Case or Account", truncate(string(l.EntityName)))}
			case l.EntityName == e:
				return &FieldError{lp + ".entityName", "a record cannot link to its own entity"}
			case mapped[l.EntityName] == "":
				return &FieldError{lp + ".entityName", fmt.Sprintf("%s is empty, so there is no %s record to link to", fields[l.EntityName], l.EntityName)}
			case l.FieldName == "":
				return &FieldError{lp + ".fieldName", "required"}
			case !apiName.MatchString(l.FieldName):
				return &FieldError{lp + ".fieldName", fmt.Sprintf("%q is not a field API name such as AccountId", truncate(l.FieldName))}
			}
		}
	}
	if err := s.validateEmbeddedChat(); err != nil {
		return err
	}
	return s.validateMessaging()
}

func (s *Settings) validateEmbeddedChat() error {
	c := s.EmbeddedChat
	targeted := s.Targets(ProductEmbeddedChat)
	if c == nil {
		if targeted {
			return &FieldError{"embeddedChat", `required when products include "embeddedChat": the embedded_svc.init arguments`}
		}
		return nil
	}
	why := `required when products include "embeddedChat"`
	checks := []struct {
		field, value string
		required     bool
		check        func(string) string
	}{
		{"coreUrl", c.CoreURL, true, httpsURL},
		{"siteUrl", c.SiteURL, true, httpsURL},
		{"gslbUrl", c.GslbURL, false, httpsURL},
		{"deploymentName", c.DeploymentName, true, matches(devName, "a deployment API name such as Web_Chat")},
		{"buttonId", c.ButtonID, false, matches(salesforceID, "a 15 or 18 character Salesforce id")},
		{"eswLiveAgentDevName", c.EswLiveAgentDevName, true, matches(devName, "an API name such as EmbeddedServiceLiveAgent_Parent04I000000000001")},
		{"baseLiveAgentUrl", c.BaseLiveAgentURL, false, httpsURL},
		{"baseLiveAgentContentUrl", c.BaseLiveAgentContentURL, false, httpsURL},
	}
	for _, ch := range checks {
		path := "embeddedChat." + ch.field
		switch {
		case ch.value == "" && ch.required && targeted:
			return &FieldError{path, why}
		case ch.value != "":
			if problem := ch.check(ch.value); problem != "" {
				return &FieldError{path, problem}
			}
		}
	}
	if targeted && c.ButtonID == "" && s.ButtonID == "" {
		return &FieldError{"embeddedChat.buttonId", why + " (or set buttonId)"}
	}
	return nil
}

func (s *Settings) validateMessaging() error {
	m := s.Messaging
	if m == nil {
		return nil
	}
	checks := []struct {
		field, value string
		check        func(string) string
	}{
		{"orgId", m.OrgID, matches(salesforceID, "a 15 or 18 character Salesforce id")},
		{"deploymentName", m.DeploymentName, matches(devName, "a deployment API name such as Web_Messaging")},
		{"siteUrl", m.SiteURL, httpsURL},
		{"scrt2Url", m.SCRT2URL, httpsURL},
	}
	for _, ch := range checks {
		if ch.value == "" {
			continue
		}
		if problem := ch.check(ch.value); problem != "" {
			return &FieldError{"messaging." + ch.field, problem}
		}
	}
	return nil
}

// entityOrder sorts entity names: known entities in section order, then
// unknown ones alphabetically, so that the first problem is always the same.
func entityOrder(keys []string) []string {
	rank := func(e string) int {
		if i := slices.Index([]Entity{EntityContact, EntityCase, EntityAccount}, Entity(e)); i >= 0 {
			return i
		}
		return 3
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// decodeExtensions decodes products and entityOptions item by item, so that
// type errors name the item: "products[1]", "entityOptions.Case.showOnCreate".
func (s *Settings) decodeExtensions(products, entityOptions json.RawMessage) error {
	s.Products, s.EntityOptions = nil, nil
	if !isNull(products) {
		var items []json.RawMessage
		if err := json.Unmarshal(products, &items); err != nil {
			return &FieldError{"products", "must be a JSON array, not " + jsonValueKind(products)}
		}
		s.Products = make([]Product, 0, len(items))
		for i, item := range items {
			var p string
			if err := json.Unmarshal(item, &p); err != nil {
				return &FieldError{fmt.Sprintf("products[%d]", i), "must be a JSON string, not " + jsonValueKind(item)}
			}
			s.Products = append(s.Products, Product(p))
		}
	}
	if !isNull(entityOptions) {
		var items map[string]json.RawMessage
		if err := json.Unmarshal(entityOptions, &items); err != nil {
			return &FieldError{"entityOptions", "must be a JSON object, not " + jsonValueKind(entityOptions)}
		}
		s.EntityOptions = make(map[Entity]EntityOptions, len(items))
		keys := make([]string, 0, len(items))
		for k := range items {
			keys = append(keys, k)
		}
		for _, k := range entityOrder(keys) {
			path := "entityOptions." + k
			if len(items[k]) == 0 || items[k][0] != '{' {
				return &FieldError{path, "must be a JSON object, not " + jsonValueKind(items[k])}
			}
			var o EntityOptions
			if err := json.Unmarshal(items[k], &o); err != nil {
				return typeProblem(path+".", err)
			}
			s.EntityOptions[Entity(k)] = o
		}
	}
	return nil
}

func matches(re *regexp.Regexp, want string) func(string) string {
	return func(v string) string {
		if re.MatchString(v) {
			return ""
		}
		return fmt.Sprintf("%q is not %s", truncate(v), want)
	}
}

// httpsURL checks an absolute https URL without query or fragment.
func httpsURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(v, " \t\n") {
		return fmt.Sprintf("%q is not an https URL such as https://acme.my.salesforce.com", truncate(v))
	}
	return ""
}
