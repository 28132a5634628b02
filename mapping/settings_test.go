package mapping_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/prechat/prechat/mapping"
)

// settingsCase is one file in testdata/settings: a settings file for
// ParseSettings and either the parsed settings (as settingsView JSON), the
// field of the expected *FieldError, or a substring of another error.
type settingsCase struct {
	Name string `json:"name"`
	// Input is the settings file as JSON; Text is used instead when the
	// file is not valid JSON.
	Input json.RawMessage `json:"input"`
	Text  *string         `json:"text"`
	// WantField is the expected FieldError.Field; WantProblem, if set, a
	// substring of its Problem.
	WantField   string `json:"wantField"`
	WantProblem string `json:"wantProblem"`
	// WantError is a substring of an error that is not a FieldError.
	WantError string          `json:"wantError"`
	Want      json.RawMessage `json:"want"`
}

type settingsView struct {
	Hostname             string        `json:"hostname"`
	LiveAgentEndpointURL string        `json:"liveAgentEndpointUrl"`
	DeploymentID         string        `json:"deploymentId"`
	OrgID                string        `json:"orgId"`
	EnableLogging        bool          `json:"enableLogging"`
	ButtonID             string        `json:"buttonId,omitempty"`
	APIVersion           string        `json:"apiVersion,omitempty"`
	ScriptURL            string        `json:"scriptUrl"`
	ChatURL              string        `json:"chatUrl"`
	Sections             []sectionView `json:"sections"`
	// The extensions for the successor products appear only when set.
	Products         []mapping.Product                        `json:"products,omitempty"`
	Targeted         []mapping.Product                        `json:"targeted,omitempty"`
	EntityOptions    map[mapping.Entity]mapping.EntityOptions `json:"entityOptions,omitempty"`
	EmbeddedChat     *mapping.EmbeddedChatConfig              `json:"embeddedChat,omitempty"`
	EmbeddedChatInit *mapping.EmbeddedChatInit                `json:"embeddedChatInit,omitempty"`
	Messaging        *mapping.MessagingConfig                 `json:"messaging,omitempty"`
	// VisibleFieldsEditable is Messaging.Editable(), shown with Messaging.
	VisibleFieldsEditable *bool `json:"visibleFieldsEditable,omitempty"`
}

type sectionView struct {
	Entity   mapping.Entity `json:"entity"`
	Field    string         `json:"field"`
	Mappings []mappingView  `json:"mappings"`
}

type mappingView struct {
	Key            string `json:"key,omitempty"`
	Trait          string `json:"trait,omitempty"`
	Property       string `json:"property,omitempty"`
	Source         string `json:"source"`
	Label          string `json:"label"`
	DisplayToAgent bool   `json:"displayToAgent"`
	FieldName      string `json:"fieldName"`
	DoFind         bool   `json:"doFind"`
	IsExactMatch   bool   `json:"isExactMatch"`
	DoCreate       bool   `json:"doCreate"`
	// Extensions, when set.
	MessagingField   string   `json:"messagingField,omitempty"`
	TranscriptFields []string `json:"transcriptFields,omitempty"`
}

func viewSettings(s *mapping.Settings) settingsView {
	v := settingsView{
		Hostname: s.Hostname, LiveAgentEndpointURL: s.LiveAgentEndpointURL, DeploymentID: s.DeploymentID,
		OrgID: s.OrgID, EnableLogging: s.EnableLogging, ButtonID: s.ButtonID, APIVersion: s.APIVersion,
		ScriptURL: s.ScriptURL(), ChatURL: s.ChatURL(), Sections: []sectionView{},
		Products: s.Products, EntityOptions: s.EntityOptions, EmbeddedChat: s.EmbeddedChat,
		EmbeddedChatInit: s.EmbeddedChatInit(), Messaging: s.Messaging,
	}
	if len(s.Products) > 0 {
		v.Targeted = s.Targeted()
	}
	if s.Messaging != nil {
		editable := s.Messaging.Editable()
		v.VisibleFieldsEditable = &editable
	}
	for _, sec := range s.Sections() {
		sv := sectionView{Entity: sec.Entity, Field: sec.Field, Mappings: []mappingView{}}
		for _, m := range sec.Mappings {
			sv.Mappings = append(sv.Mappings, mappingView{
				Key: m.Key, Trait: m.Trait, Property: m.Property, Source: m.Source(), Label: m.Label,
				DisplayToAgent: m.DisplayToAgent, FieldName: m.FieldName, DoFind: m.DoFind,
				IsExactMatch: m.IsExactMatch, DoCreate: m.DoCreate,
				MessagingField: m.MessagingField, TranscriptFields: m.TranscriptFields,
			})
		}
		v.Sections = append(v.Sections, sv)
	}
	return v
}

func TestParseSettings(t *testing.T) {
	t.Parallel()
	cases := loadCases[settingsCase](t, "settings")
	for _, file := range sortedKeys(cases) {
		c := cases[file]
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			raw := []byte(c.Input)
			if c.Text != nil {
				raw = []byte(*c.Text)
			}
			outcomes := 0
			for _, set := range []bool{len(c.Want) > 0, c.WantField != "", c.WantError != ""} {
				if set {
					outcomes++
				}
			}
			if c.Name == "" || outcomes != 1 {
				t.Fatalf("case file is incomplete: name and exactly one of want, wantField, wantError are required")
			}
			s, err := mapping.ParseSettings(raw)
			switch {
			case len(c.Want) > 0:
				if err != nil {
					t.Fatalf("ParseSettings: %v", err)
				}
				assertJSONEqual(t, viewSettings(s), c.Want)
				// A parsed settings value validates again unchanged.
				if err := s.Validate(); err != nil {
					t.Errorf("Validate after ParseSettings: %v", err)
				}
				return
			case err == nil:
				t.Fatalf("ParseSettings succeeded, want an error; got %+v", s)
			}
			if s != nil {
				t.Errorf("ParseSettings returned settings with its error: %+v", s)
			}
			if !errors.Is(err, mapping.ErrInvalidSettings) {
				t.Errorf("error %q does not wrap ErrInvalidSettings", err)
			}
			var fe *mapping.FieldError
			isField := errors.As(err, &fe)
			if c.WantError != "" {
				if isField {
					t.Errorf("error is a FieldError %+v, want a plain error", fe)
				}
				if !strings.Contains(err.Error(), c.WantError) {
					t.Errorf("error %q does not contain %q", err, c.WantError)
				}
				return
			}
			if !isField {
				t.Fatalf("error %q (%T) is not a *mapping.FieldError", err, err)
			}
			if fe.Field != c.WantField {
				t.Errorf("FieldError.Field = %q, want %q (error: %v)", fe.Field, c.WantField, err)
			}
			if !strings.Contains(fe.Problem, c.WantProblem) {
				t.Errorf("FieldError.Problem = %q, want it to contain %q", fe.Problem, c.WantProblem)
			}
			if want := fe.Field + ": " + fe.Problem; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

// TestMappingForms checks that both mapping item forms decode to the same
// Mapping, apart from Key.
func TestMappingForms(t *testing.T) {
	t.Parallel()
	inner := `{"trait":"email","label":"User Email","displayToAgent":true,"fieldName":"Email","doFind":true,"isExactMatch":true,"doCreate":true}`
	var wrapped, bare mapping.Mapping
	if err := json.Unmarshal([]byte(`{"key":"email","value":`+inner+`}`), &wrapped); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(inner), &bare); err != nil {
		t.Fatal(err)
	}
	want := mapping.Mapping{Trait: "email", Label: "User Email", DisplayToAgent: true, FieldName: "Email",
		DoFind: true, IsExactMatch: true, DoCreate: true}
	if !reflect.DeepEqual(bare, want) {
		t.Errorf("bare form = %+v, want %+v", bare, want)
	}
	want.Key, want.Wrapped = "email", true
	if !reflect.DeepEqual(wrapped, want) {
		t.Errorf("wrapped form = %+v, want %+v", wrapped, want)
	}
}

func TestMappingSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m    mapping.Mapping
		want string
	}{
		{mapping.Mapping{Trait: "email"}, "email"},
		{mapping.Mapping{Property: "website"}, "website"},
		{mapping.Mapping{Trait: "t", Property: "p"}, "p"},
		{mapping.Mapping{}, ""},
	}
	for _, tt := range tests {
		if got := tt.m.Source(); got != tt.want {
			t.Errorf("%+v.Source() = %q, want %q", tt.m, got, tt.want)
		}
	}
}
