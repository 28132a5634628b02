package mapping_test

import (
	"fmt"
	"time"

	"github.com/prechat/prechat/mapping"
)

// settingsJSON is a destination's settings as Segment exports them: the
// mappings in the {"key", "value"} form or bare.
const settingsJSON = `{"settings": {
  "hostname": "c.la3-c1cs-phx",
  "liveAgentEndpointUrl": "d.la3-c1cs-phx",
  "deploymentId": "5723D00000000F4",
  "orgId": "00D3D000000DIdG",
  "contactMappings": [
    {"key": "email", "value": {"trait": "email", "label": "User Email", "fieldName": "Email",
      "displayToAgent": true, "doFind": true, "isExactMatch": true, "doCreate": true}},
    {"trait": "firstName", "label": "First Name", "fieldName": "FirstName", "displayToAgent": true},
    {"trait": "lastName", "label": "Last Name", "fieldName": "LastName", "displayToAgent": true}
  ],
  "caseMappings": [
    {"property": "subject", "label": "Subject", "fieldName": "Subject", "displayToAgent": true}
  ],
  "accountMappings": []
}}`

func ExampleParseSettings() {
	s, err := mapping.ParseSettings([]byte(settingsJSON))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("deployment.js:", s.ScriptURL())
	fmt.Println("chat:", s.ChatURL())
	for _, sec := range s.Sections() {
		for _, m := range sec.Mappings {
			fmt.Printf("%s.%s <- %s (%q)\n", sec.Entity, m.FieldName, m.Source(), m.Label)
		}
	}
	// Output:
	// deployment.js: https://c.la3-c1cs-phx.salesforceliveagent.com/content/g/js/29.0/deployment.js
	// chat: https://d.la3-c1cs-phx.salesforceliveagent.com/chat
	// Contact.Email <- email ("User Email")
	// Contact.FirstName <- firstName ("First Name")
	// Contact.LastName <- lastName ("Last Name")
	// Case.Subject <- subject ("Subject")
}

// ExampleParseSettings_invalid: a settings file that cannot work is refused
// with the field at fault.
func ExampleParseSettings_invalid() {
	_, err := mapping.ParseSettings([]byte(`{"hostname": "c.x", "liveAgentEndpointUrl": "d.x", "deploymentId": "5723D00000000F4",
	  "orgId": "00D3D000000DIdG", "contactMappings": [{"trait": "email", "fieldName": "Email"}]}`))
	fmt.Println(err)
	// Output:
	// contactMappings[0].label: required
}

// ExampleMaterializer_Document builds the pre-chat document of a visitor
// from the events the pipeline applied: the identify's traits, the
// conversation start's properties.
func ExampleMaterializer_Document() {
	settings, err := mapping.ParseSettings([]byte(settingsJSON))
	if err != nil {
		fmt.Println(err)
		return
	}
	m := &mapping.Materializer{Settings: settings, TTL: 30 * time.Minute}

	state := mapping.NewState()
	for _, raw := range []string{
		`{"type":"identify","messageId":"m1","anonymousId":"a1","traits":{"email":"ada@example.com","firstName":"Ada","lastName":"Lovelace"},"timestamp":"2025-05-01T10:00:00Z"}`,
		`{"type":"track","messageId":"m2","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"subject":"Shoes"},"timestamp":"2025-05-01T10:01:00Z"}`,
	} {
		e, err := mapping.Decode([]byte(raw), "")
		if err != nil {
			fmt.Println(err)
			return
		}
		state.Apply(&e, time.Time{}) // the events carry their timestamp
	}
	v, ok := state.Visitor("a1")
	if !ok {
		fmt.Println("no conversation start")
		return
	}
	doc := m.Document(v)
	fmt.Println(doc.VisitorName, "expires", doc.ExpiresAt.Format(time.RFC3339))
	for _, d := range doc.Details {
		fmt.Printf("%s %s = %s\n", d.Entity, d.Label, d.Value)
	}
	for _, c := range mapping.LiveAgentCalls(&doc)[:3] {
		b, _ := c.MarshalJSON()
		fmt.Println(string(b))
	}
	// Output:
	// Ada Lovelace expires 2025-05-01T10:31:00Z
	// Contact User Email = "ada@example.com"
	// Contact First Name = "Ada"
	// Contact Last Name = "Lovelace"
	// Case Subject = "Shoes"
	// ["findOrCreate","Contact"]
	// ["addCustomDetail","User Email","ada@example.com",true]
	// ["map","Email","User Email",true,true,true]
}
