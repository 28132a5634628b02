package mapping_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// productCase is one file in testdata/products: settings, events and what
// each product receives for the visitor's document.
type productCase struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Settings    json.RawMessage   `json:"settings"`
	Events      []json.RawMessage `json:"events"`
	AnonymousID string            `json:"anonymousId"`
	Want        struct {
		// Entities and Warnings, when present, are the document's.
		Entities json.RawMessage `json:"entities"`
		Warnings json.RawMessage `json:"warnings"`
		// LiveAgent is LiveAgentCalls, as [name, args...] arrays.
		LiveAgent json.RawMessage `json:"liveAgent"`
		// EmbeddedChat and Messaging are the document's renderings, null
		// when the settings do not target the product.
		EmbeddedChat json.RawMessage `json:"embeddedChat"`
		Messaging    json.RawMessage `json:"messaging"`
	} `json:"want"`
}

// productDocuments builds the document of every case in testdata/products;
// settings holds each case's parsed settings.
func productDocuments(t *testing.T) (cases map[string]productCase, docs map[string]mapping.Document, settings map[string]*mapping.Settings) {
	t.Helper()
	cases = loadCases[productCase](t, "products")
	docs = map[string]mapping.Document{}
	settings = map[string]*mapping.Settings{}
	for file, c := range cases {
		w := c.Want
		if c.Name == "" || len(c.Events) == 0 || c.AnonymousID == "" || len(w.LiveAgent) == 0 || len(w.EmbeddedChat) == 0 || len(w.Messaging) == 0 {
			t.Fatalf("%s: case file is incomplete: name, events, anonymousId and want.liveAgent, want.embeddedChat and want.messaging (null when not targeted) are required", file)
		}
		parsed, err := mapping.ParseSettings(c.Settings)
		if err != nil {
			t.Fatalf("%s: ParseSettings: %v", file, err)
		}
		settings[file] = parsed
		st := mapping.NewState()
		fallback, _ := time.Parse(time.RFC3339, defaultFallback)
		for i, raw := range c.Events {
			e, err := mapping.Decode(raw, fmt.Sprintf("fallback-%d", i))
			if err != nil {
				t.Fatalf("%s: event %d: %v", file, i, err)
			}
			st.Apply(&e, fallback)
		}
		v, ok := st.Visitor(c.AnonymousID)
		if !ok {
			t.Fatalf("%s: no conversation start for %q", file, c.AnonymousID)
		}
		doc := parsed.Build(v, 30*time.Minute)
		// What the snippet receives is the stored JSON.
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var stored mapping.Document
		if err := json.Unmarshal(raw, &stored); err != nil {
			t.Fatal(err)
		}
		docs[file] = stored
	}
	return cases, docs, settings
}

// TestRenderLiveAgent: the Legacy Chat calls of each document, in order,
// and the document's entities and warnings.
func TestRenderLiveAgent(t *testing.T) {
	t.Parallel()
	cases, docs, _ := productDocuments(t)
	for _, file := range sortedKeys(cases) {
		c, doc := cases[file], docs[file]
		t.Run(file, func(t *testing.T) {
			assertJSONEqual(t, mapping.LiveAgentCalls(&doc), c.Want.LiveAgent)
			if len(c.Want.Entities) > 0 {
				assertJSONEqual(t, doc.Entities, c.Want.Entities)
			}
			if len(c.Want.Warnings) > 0 {
				assertJSONEqual(t, doc.Warnings, c.Want.Warnings)
			}
		})
	}
}

// TestRenderEmbeddedChat: the Embedded Service Chat settings and init
// arguments stored in each document, and that they are EmbeddedChatOf the
// stored document with the settings' init arguments.
func TestRenderEmbeddedChat(t *testing.T) {
	t.Parallel()
	cases, docs, settings := productDocuments(t)
	for _, file := range sortedKeys(cases) {
		c, doc, s := cases[file], docs[file], settings[file]
		t.Run(file, func(t *testing.T) {
			assertJSONEqual(t, doc.EmbeddedChat, c.Want.EmbeddedChat)
			if doc.EmbeddedChat != nil {
				assertJSONEqual(t, mapping.EmbeddedChatOf(&doc, s.EmbeddedChatInit()), c.Want.EmbeddedChat)
			}
		})
	}
}

// TestRenderMessaging: the Messaging for Web hidden and visible pre-chat
// fields stored in each document, and that they are MessagingOf the stored
// document with the settings' visibleFieldsEditable.
func TestRenderMessaging(t *testing.T) {
	t.Parallel()
	cases, docs, settings := productDocuments(t)
	for _, file := range sortedKeys(cases) {
		c, doc, s := cases[file], docs[file], settings[file]
		t.Run(file, func(t *testing.T) {
			assertJSONEqual(t, doc.Messaging, c.Want.Messaging)
			if doc.Messaging != nil {
				assertJSONEqual(t, mapping.MessagingOf(&doc, s.Messaging.Editable()), c.Want.Messaging)
			}
		})
	}
}

// TestRenderDocumentWithoutEntities: a document stored before entities
// existed renders one prechat info per entity of its details, without
// options.
func TestRenderDocumentWithoutEntities(t *testing.T) {
	t.Parallel()
	var doc mapping.Document
	err := json.Unmarshal([]byte(`{"chat":{"chatUrl":"https://d.x.salesforceliveagent.com/chat","deploymentId":"5723D00000000F4","orgId":"00D3D000000DIdG"},
		"details":[
			{"entity":"Contact","label":"User Email","value":"a@b.c","displayToAgent":true,"fieldName":"Email","doFind":true,"isExactMatch":true,"doCreate":true},
			{"entity":"Case","label":"Subject","value":"Hi","displayToAgent":false,"fieldName":"Subject","doFind":false,"isExactMatch":false,"doCreate":true}]}`), &doc)
	if err != nil {
		t.Fatal(err)
	}
	assertJSONEqual(t, mapping.EmbeddedChatOf(&doc, nil), []byte(`{"init":null,"settings":{
		"extraPrechatFormDetails":[
			{"label":"User Email","value":"a@b.c","displayToAgent":true,"transcriptFields":[]},
			{"label":"Subject","value":"Hi","displayToAgent":false,"transcriptFields":[]}],
		"extraPrechatInfo":[
			{"entityName":"Contact","showOnCreate":false,"saveToTranscript":"","entityFieldMaps":[{"fieldName":"Email","label":"User Email","doFind":true,"isExactMatch":true,"doCreate":true}]},
			{"entityName":"Case","showOnCreate":false,"saveToTranscript":"","entityFieldMaps":[{"fieldName":"Subject","label":"Subject","doFind":false,"isExactMatch":false,"doCreate":true}]}],
		"prepopulatedPrechatFields":{"Email":"a@b.c","Subject":"Hi"}}}`))
	assertJSONEqual(t, mapping.LiveAgentCalls(&doc), []byte(`[
		["findOrCreate","Contact"],["addCustomDetail","User Email","a@b.c",true],["map","Email","User Email",true,true,true],
		["findOrCreate","Case"],["addCustomDetail","Subject","Hi",false],["map","Subject","Subject",false,false,true],
		["init","https://d.x.salesforceliveagent.com/chat","5723D00000000F4","00D3D000000DIdG"]]`))
}

// TestRenderText: values as the successor products take them.
func TestRenderText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ raw, want string }{
		{`"ada@example.com"`, "ada@example.com"},
		{`"L\u00f8velace \"7\""`, `Løvelace "7"`},
		{`100`, "100"},
		{`-1.50`, "-1.5"},
		{`1e21`, "1e+21"},
		{`123456789012345678901234`, "1.2345678901234569e+23"},
		{`0.000001`, "0.000001"},
		{`5e-7`, "5e-7"},
		{`true`, "true"},
		{`false`, "false"},
		{`{ "city" : "Paris" }`, `{"city":"Paris"}`},
		{`[1, "a"]`, `[1,"a"]`},
	} {
		if got := mapping.Text(json.RawMessage(tt.raw)); got != tt.want {
			t.Errorf("Text(%s) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// TestRenderPreview: the preview document of the example settings carries
// placeholders naming each value's source, for every product.
func TestRenderPreview(t *testing.T) {
	t.Parallel()
	s, err := mapping.ParseSettings([]byte(`{"hostname":"c.x","liveAgentEndpointUrl":"d.x","deploymentId":"5723D00000000F4","orgId":"00D3D000000DIdG",
		"products":["messaging"],
		"contactMappings":[{"trait":"address.city","label":"City","fieldName":"MailingCity","messagingField":"City"},{"trait":"lastName","label":"Last Name","fieldName":"LastName"}],
		"caseMappings":[{"property":"subject","label":"Subject","fieldName":"Subject"}],
		"accountMappings":[{"property":"website","label":"Website","fieldName":"Website","messagingField":"Website"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	doc := s.Preview()
	assertJSONEqual(t, doc.Messaging, []byte(`{
		"hiddenFields":{"City":"<trait address.city>","Website":"<group trait website>"},
		"visibleFields":{"_lastName":{"value":"<trait lastName>","isEditableByEndUser":true},"_subject":{"value":"<property subject>","isEditableByEndUser":true}}}`))
	if doc.VisitorName != "<trait firstName> <trait lastName>" || len(doc.Warnings) != 0 || doc.EmbeddedChat != nil {
		t.Errorf("preview: visitorName %q, warnings %v, embeddedChat %v", doc.VisitorName, doc.Warnings, doc.EmbeddedChat)
	}
}
