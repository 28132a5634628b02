package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prechat/prechat/mapping/mappingtest"
)

// settingsBase is a minimal valid settings object without its closing
// brace, so that cases append their own fields.
const settingsBase = `{"hostname":"c.la3-c1cs-phx","liveAgentEndpointUrl":"d.la3-c1cs-phx","deploymentId":"5723D00000000F4","orgId":"00D3D000000DIdG",
"contactMappings":[
  {"trait":"email","label":"User Email","displayToAgent":true,"fieldName":"Email","doFind":true,"isExactMatch":true,"doCreate":true},
  {"trait":"firstName","label":"First Name","fieldName":"FirstName","doCreate":true}],
"caseMappings":[{"property":"subject","label":"Subject","displayToAgent":true,"fieldName":"Subject","doCreate":true}],
"accountMappings":[{"property":"website","label":"Account Website","fieldName":"Website","doFind":true}]`

const settingsESW = `"embeddedChat":{"coreUrl":"https://acme.my.salesforce.com","siteUrl":"https://acme.my.site.com/help","deploymentName":"Web_Chat","buttonId":"5733D00000000Ab","eswLiveAgentDevName":"EmbeddedServiceLiveAgent_Parent04I000000000001"}`

// TestSettingsCheckProducts runs "processor settings check" over settings
// for each product and checks what it says each targeted product receives,
// and that untargeted products are not shown.
func TestSettingsCheckProducts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		settings string
		want     []string
		not      []string
	}{
		{
			name:     "example settings: all three products",
			settings: string(mappingtest.SettingsJSON),
			want: []string{
				"Products: liveAgent, embeddedChat, messaging",
				"Legacy Chat (liveagent)",
				`email      "User Email"  yes             Contact.Email      yes   yes    yes`,
				"Embedded Service Chat (embedded_svc), set before init (values as text):",
				`embedded_svc.settings.extraPrechatFormDetails = [ { "label": "User Email", "value": "<trait email>", "displayToAgent": true, "transcriptFields": [] },`,
				`{ "entityName": "Account", "showOnCreate": false, "saveToTranscript": "", "entityFieldMaps": [ { "fieldName": "Website", "label": "Account Website", "doFind": true, "isExactMatch": true, "doCreate": false },`,
				`embedded_svc.settings.prepopulatedPrechatFields = { "Email": "<trait email>", "FirstName": "<trait firstName>", "LastName": "<trait lastName>", "Subject": "<property subject>" }`,
				`then embedded_svc.init("https://example.my.salesforce.com", "https://example.my.site.com/support", "https://service.force.com", "00D3D000000DIdG", "Prechat_Chat", { "baseLiveAgentContentURL": "https://c.la3-c1cs-phx.salesforceliveagent.com/content", "deploymentId": "5723D00000000F4", "buttonId": "5733D00000000Ab", "baseLiveAgentURL": "https://d.la3-c1cs-phx.salesforceliveagent.com/chat",`,
				"Messaging for Web (embeddedservice_bootstrap), after onEmbeddedMessagingReady and before the conversation starts (values as text):",
				`the page, after prechat.js: embeddedservice_bootstrap.init("00D3D000000DIdG", "Prechat_Messaging", "https://example.my.site.com/ESWPrechatMessaging1", { "scrt2URL": "https://example.my.salesforce-scrt.com" })`,
				`setHiddenPrechatFields({ "Account_Revenue": "<group trait revenue>", "Account_Website": "<group trait website>", "Case_Status": "<property caseStatus>", "Email": "<trait email>" })`,
				`setVisiblePrechatFields({ "_email": { "value": "<trait email>", "isEditableByEndUser": false }, "_firstName": { "value": "<trait firstName>", "isEditableByEndUser": false },`,
			},
		},
		{
			name:     "no products: Legacy Chat only",
			settings: settingsBase + `}`,
			want: []string{
				"Products: liveAgent\n",
				"init           https://d.la3-c1cs-phx.salesforceliveagent.com/chat, 5723D00000000F4, 00D3D000000DIdG",
				`setName(firstName + " " + lastName) when both traits are set`,
			},
			not: []string{"Embedded Service Chat", "Messaging for Web", "transcript", "then "},
		},
		{
			name:     "Messaging only, no channel variables, visible fields editable by default",
			settings: settingsBase + `,"products":["messaging"]}`,
			want: []string{
				"Products: messaging\n",
				"Mappings (Legacy Chat is not targeted)",
				"no hidden pre-chat fields: no mapping sets messagingField",
				`setVisiblePrechatFields({ "_email": { "value": "<trait email>", "isEditableByEndUser": true }, "_firstName": { "value": "<trait firstName>", "isEditableByEndUser": true }, "_subject": { "value": "<property subject>", "isEditableByEndUser": true } })`,
			},
			not: []string{"Legacy Chat (liveagent)", "deployment.js", "Embedded Service Chat", "the page, after prechat.js"},
		},
		{
			name:     "Messaging only, without a Live Agent deployment",
			settings: strings.Replace(settingsBase, `"hostname":"c.la3-c1cs-phx","liveAgentEndpointUrl":"d.la3-c1cs-phx","deploymentId":"5723D00000000F4",`, "", 1) + `,"products":["messaging"]}`,
			want: []string{
				"Products: messaging\n",
				`setVisiblePrechatFields({ "_email": { "value": "<trait email>", "isEditableByEndUser": true },`,
			},
			not: []string{"Legacy Chat (liveagent)", "deployment.js", "salesforceliveagent.com"},
		},
		{
			name: "Embedded Chat with entity options and transcript fields",
			settings: strings.Replace(settingsBase, `"doCreate":true},`, `"doCreate":true,"transcriptFields":["Email__c","Visitor_Email__c"]},`, 1) +
				`,"products":["embeddedChat","liveAgent"],` + settingsESW + `,
				"entityOptions":{"Contact":{"saveToTranscript":"ContactId","showOnCreate":true,"linkToEntity":{"entityName":"Account","fieldName":"AccountId"}},
				"Case":{"saveToTranscript":"CaseId"}}}`,
			want: []string{
				"Products: liveAgent, embeddedChat\n",
				`"User Email" is saved to the transcript fields Email__c, Visitor_Email__c`,
				`then saveToTranscript("ContactId").showOnCreate().linkToEntity("Account", "AccountId")`,
				`then saveToTranscript("CaseId")`,
				`{ "label": "User Email", "value": "<trait email>", "displayToAgent": true, "transcriptFields": [ "Email__c", "Visitor_Email__c" ] }`,
				`{ "entityName": "Contact", "showOnCreate": true, "saveToTranscript": "ContactId", "linkToEntityName": "Account", "linkToEntityField": "AccountId", "entityFieldMaps": [`,
				`{ "entityName": "Case", "showOnCreate": false, "saveToTranscript": "CaseId", "entityFieldMaps": [`,
				`prepopulatedPrechatFields = { "Email": "<trait email>", "FirstName": "<trait firstName>", "Subject": "<property subject>" }`,
				`then embedded_svc.init("https://acme.my.salesforce.com", "https://acme.my.site.com/help", "https://service.force.com", "00D3D000000DIdG", "Web_Chat", {`,
			},
			not: []string{"Messaging for Web"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out, stderr := runCmd(t, nil, "settings", "check", writeSettings(t, []byte(c.settings)))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			flat := squash(out)
			for _, want := range c.want {
				if !strings.Contains(out, want) && !strings.Contains(flat, squash(want)) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			for _, not := range c.not {
				if strings.Contains(out, not) {
					t.Errorf("output has %q:\n%s", not, out)
				}
			}
			if !strings.HasSuffix(out, "Only these fields leave the server; other traits and properties are never in a document.\n") {
				t.Errorf("output does not end with the privacy note:\n%s", out)
			}
		})
	}
}

// TestSettingsCheckProductErrors: invalid product settings fail the check
// with the JSON path of the first problem.
func TestSettingsCheckProductErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, settings, want string
	}{
		{"unknown product", settingsBase + `,"products":["liveAgent","chat"]}`, `products[1]: "chat" is not a product; use liveAgent, embeddedChat or messaging`},
		{"embeddedChat without init arguments", settingsBase + `,"products":["embeddedChat"]}`, `embeddedChat: required when products include "embeddedChat"`},
		{"embeddedChat without a button", settingsBase + `,"products":["embeddedChat"],` + strings.Replace(settingsESW, `"buttonId":"5733D00000000Ab",`, "", 1) + `}`, `embeddedChat.buttonId: required when products include "embeddedChat" (or set buttonId)`},
		{"messagingField with a standard field's name", strings.Replace(settingsBase, `"fieldName":"Email",`, `"fieldName":"Email","messagingField":"_email",`, 1) + `}`, `contactMappings[0].messagingField: "_email" is not a channel variable name`},
		{"link to an unmapped entity", strings.Replace(settingsBase, `{"property":"website","label":"Account Website","fieldName":"Website","doFind":true}`, ``, 1) + `,"entityOptions":{"Case":{"linkToEntity":{"entityName":"Account","fieldName":"AccountId"}}}}`, `entityOptions.Case.linkToEntity.entityName: accountMappings is empty, so there is no Account record to link to`},
		{"embeddedChat without the Live Agent deployment", strings.Replace(settingsBase, `"hostname":"c.la3-c1cs-phx",`, "", 1) + `,"products":["embeddedChat"],` + settingsESW + `}`, `hostname: required`},
		{"messaging URL", settingsBase + `,"messaging":{"scrt2Url":"http://acme.my.salesforce-scrt.com"}}`, `messaging.scrt2Url: "http://acme.my.salesforce-scrt.com" is not an https URL`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out, stderr := runCmd(t, nil, "settings", "check", writeSettings(t, []byte(c.settings)))
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q, stdout %q; want exit 1 and %q", code, stderr, out, c.want)
			}
		})
	}
}

// TestSettingsCheckWarnings runs "processor settings check" over the
// settings files of mapping's warning cases (mapping/testdata/warnings):
// each is valid (exit 0), and the output lists exactly its warnings,
// "field: problem", before the mappings; clean settings print no warning.
func TestSettingsCheckWarnings(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "mapping", "testdata", "warnings", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no warning cases: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Input json.RawMessage `json:"input"`
				Want  []struct{ Field, Problem string }
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runCmd(t, nil, "settings", "check", writeSettings(t, c.Input))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			head, _, _ := strings.Cut(out, "Products: ")
			if len(c.Want) == 0 {
				if strings.Contains(out, "Warnings: ") {
					t.Errorf("clean settings printed warnings:\n%s", out)
				}
				return
			}
			if want := fmt.Sprintf("Warnings: %d setting(s) cannot work as written in Salesforce\n", len(c.Want)); !strings.Contains(head, want) {
				t.Errorf("the output does not start with %q:\n%s", want, out)
			}
			for _, w := range c.Want {
				if !strings.Contains(head, "  "+w.Field+": ") || !strings.Contains(head, w.Problem) {
					t.Errorf("the warnings lack %s: …%s…:\n%s", w.Field, w.Problem, head)
				}
			}
		})
	}
}
