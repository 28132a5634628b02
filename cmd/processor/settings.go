package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/prechat/prechat/mapping"
)

// loadSettings reads and validates a settings file; errors name the file
// and the field.
func loadSettings(path string) (*mapping.Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	s, err := mapping.ParseSettings(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// settingsCmd runs "processor settings check FILE".
func settingsCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "check" {
		return usageError{errors.New("usage: processor settings check FILE")}
	}
	s, err := loadSettings(args[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: valid\n\n", args[1])
	printWarnings(stdout, s.Warnings())
	printSettings(stdout, s)
	return nil
}

// printWarnings lists what in valid settings cannot work as written
// (mapping.Settings.Warnings), one setting per line, before the rest.
func printWarnings(w io.Writer, warnings []mapping.SettingsWarning) {
	if len(warnings) == 0 {
		return
	}
	fmt.Fprintf(w, "Warnings: %d setting(s) cannot work as written in Salesforce\n", len(warnings))
	for _, x := range warnings {
		fmt.Fprintf(w, "  %s\n", x)
	}
	fmt.Fprintln(w)
}

// productNames are the products as the output names them.
var productNames = map[mapping.Product]string{
	mapping.ProductLiveAgent:    "Legacy Chat (liveagent)",
	mapping.ProductEmbeddedChat: "Embedded Service Chat (embedded_svc)",
	mapping.ProductMessaging:    "Messaging for Web (embeddedservice_bootstrap)",
}

// printSettings shows what the settings make the browser do: the mappings,
// then what each targeted product receives for a visitor who has every
// mapped trait and property (placeholders such as "<trait email>" stand
// for the values).
func printSettings(w io.Writer, s *mapping.Settings) {
	targeted := s.Targeted()
	names := make([]string, len(targeted))
	for i, p := range targeted {
		names[i] = string(p)
	}
	fmt.Fprintf(w, "Products: %s\n\n", strings.Join(names, ", "))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if s.Targets(mapping.ProductLiveAgent) {
		fmt.Fprintf(tw, "Legacy Chat (liveagent)\n")
		fmt.Fprintf(tw, "  deployment.js\t%s\n", s.ScriptURL())
		fmt.Fprintf(tw, "  init\t%s, %s, %s\n", s.ChatURL(), s.DeploymentID, s.OrgID)
		fmt.Fprintf(tw, "  enableLogging\t%t\n", s.EnableLogging)
		if s.ButtonID != "" {
			fmt.Fprintf(tw, "  buttonId\t%s\n", s.ButtonID)
		}
	} else {
		fmt.Fprintf(tw, "Mappings (Legacy Chat is not targeted)\n")
	}
	sources := map[mapping.Entity]string{
		mapping.EntityContact: "identify traits",
		mapping.EntityCase:    "the conversation start's properties",
		mapping.EntityAccount: "group traits",
	}
	for _, sec := range s.Sections() {
		fmt.Fprintf(tw, "\nfindOrCreate(%q), from %s: %d mapping(s)\n", sec.Entity, sources[sec.Entity], len(sec.Mappings))
		if len(sec.Mappings) > 0 {
			fmt.Fprintf(tw, "  SOURCE\tDETAIL LABEL\tSHOWN TO AGENT\tFIELD\tFIND\tEXACT\tCREATE\n")
		}
		for _, m := range sec.Mappings {
			fmt.Fprintf(tw, "  %s\t%q\t%s\t%s.%s\t%s\t%s\t%s\n", m.Source(), m.Label, yes(m.DisplayToAgent), sec.Entity, m.FieldName, yes(m.DoFind), yes(m.IsExactMatch), yes(m.DoCreate))
		}
		for _, m := range sec.Mappings {
			if len(m.TranscriptFields) > 0 {
				fmt.Fprintf(tw, "  %q is saved to the transcript fields %s\n", m.Label, strings.Join(m.TranscriptFields, ", "))
			}
		}
		if o, ok := s.EntityOptions[sec.Entity]; ok && len(sec.Mappings) > 0 {
			var calls []string
			if o.SaveToTranscript != "" {
				calls = append(calls, fmt.Sprintf("saveToTranscript(%q)", o.SaveToTranscript))
			}
			if o.ShowOnCreate {
				calls = append(calls, "showOnCreate()")
			}
			if l := o.LinkToEntity; l != nil {
				calls = append(calls, fmt.Sprintf("linkToEntity(%q, %q)", l.EntityName, l.FieldName))
			}
			if len(calls) > 0 {
				fmt.Fprintf(tw, "  then %s\n", strings.Join(calls, "."))
			}
		}
		if sec.Entity == mapping.EntityContact && len(sec.Mappings) > 0 {
			fmt.Fprintf(tw, "  setName(firstName + \" \" + lastName) when both traits are set\n")
		}
	}
	tw.Flush()

	doc := s.Preview()
	if e := doc.EmbeddedChat; e != nil {
		fmt.Fprintf(w, "\n%s, set before init (values as text):\n", productNames[mapping.ProductEmbeddedChat])
		fmt.Fprintf(w, "  embedded_svc.settings.extraPrechatFormDetails = %s\n", jsonText(e.Settings.ExtraPrechatFormDetails))
		fmt.Fprintf(w, "  embedded_svc.settings.extraPrechatInfo = %s\n", jsonText(e.Settings.ExtraPrechatInfo))
		if e.Settings.PrepopulatedPrechatFields != nil {
			fmt.Fprintf(w, "  embedded_svc.settings.prepopulatedPrechatFields = %s\n", jsonText(e.Settings.PrepopulatedPrechatFields))
		}
		if in := e.Init; in != nil {
			fmt.Fprintf(w, "  then embedded_svc.init(%s, %s, %s, %s, %s, %s)\n", jsonText(in.CoreURL), jsonText(in.SiteURL),
				jsonText(in.GslbURL), jsonText(in.OrgID), jsonText(in.DeploymentName), jsonText(in.Options))
		}
	}
	if m := doc.Messaging; m != nil {
		fmt.Fprintf(w, "\n%s, after onEmbeddedMessagingReady and before the conversation starts (values as text):\n", productNames[mapping.ProductMessaging])
		if c := s.Messaging; c != nil && c.DeploymentName != "" && c.SiteURL != "" {
			org := c.OrgID
			if org == "" {
				org = s.OrgID
			}
			opts := map[string]string{}
			if c.SCRT2URL != "" {
				opts["scrt2URL"] = c.SCRT2URL
			}
			fmt.Fprintf(w, "  the page, after prechat.js: embeddedservice_bootstrap.init(%s, %s, %s, %s)\n", jsonText(org), jsonText(c.DeploymentName), jsonText(c.SiteURL), jsonText(opts))
		}
		if m.HiddenFields != nil {
			fmt.Fprintf(w, "  embeddedservice_bootstrap.prechatAPI.setHiddenPrechatFields(%s)\n", jsonText(m.HiddenFields))
		} else {
			fmt.Fprintf(w, "  no hidden pre-chat fields: no mapping sets messagingField\n")
		}
		if m.VisibleFields != nil {
			fmt.Fprintf(w, "  embeddedservice_bootstrap.prechatAPI.setVisiblePrechatFields(%s)\n", jsonText(m.VisibleFields))
		} else {
			fmt.Fprintf(w, "  no visible pre-chat fields: no mapping has fieldName FirstName, LastName or Email (Contact) or Subject (Case)\n")
		}
	}
	fmt.Fprintln(w, "\nOnly these fields leave the server; other traits and properties are never in a document.")
}

// jsonText is v as indented JSON, continuation lines indented by two
// spaces, without HTML escaping.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSpace(b.String())
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
