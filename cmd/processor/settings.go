package main

import (
	"errors"
	"fmt"
	"io"
	"os"
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
	printSettings(stdout, s)
	return nil
}

// printSettings shows what the settings make the browser do.
func printSettings(w io.Writer, s *mapping.Settings) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Legacy Chat (liveagent)\n")
	fmt.Fprintf(tw, "  deployment.js\t%s\n", s.ScriptURL())
	fmt.Fprintf(tw, "  init\t%s, %s, %s\n", s.ChatURL(), s.DeploymentID, s.OrgID)
	fmt.Fprintf(tw, "  enableLogging\t%t\n", s.EnableLogging)
	if s.ButtonID != "" {
		fmt.Fprintf(tw, "  buttonId\t%s\n", s.ButtonID)
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
		if sec.Entity == mapping.EntityContact && len(sec.Mappings) > 0 {
			fmt.Fprintf(tw, "  setName(firstName + \" \" + lastName) when both traits are set\n")
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nOnly these fields leave the server; other traits and properties are never in a document.")
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
