package mapping_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prechat/prechat/mapping"
)

// warningsCase is one file in testdata/warnings: valid settings and the
// warnings Settings.Warnings gives for them, in order; problem is a part of
// the warning's Problem.
type warningsCase struct {
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	Want  []struct {
		Code    string `json:"code"`
		Field   string `json:"field"`
		Problem string `json:"problem"`
	} `json:"want"`
}

func TestSettingsWarnings(t *testing.T) {
	t.Parallel()
	cases := loadCases[warningsCase](t, "warnings")
	for _, file := range sortedKeys(cases) {
		c := cases[file]
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			if c.Name == "" || c.Want == nil {
				t.Fatal("case file is incomplete: name and want are required")
			}
			s, err := mapping.ParseSettings(c.Input)
			if err != nil {
				t.Fatalf("ParseSettings: %v", err)
			}
			got := s.Warnings()
			if len(got) != len(c.Want) {
				t.Fatalf("%d warnings, want %d:\n%s", len(got), len(c.Want), warningLines(got))
			}
			for i, w := range c.Want {
				g := got[i]
				if g.Code != w.Code || g.Field != w.Field || w.Problem == "" || !strings.Contains(g.Problem, w.Problem) {
					t.Errorf("warning %d = %s %s\n\t%s\nwant %s %s, with %q", i, g.Code, g.Field, g.Problem, w.Code, w.Field, w.Problem)
				}
				if g.String() != g.Field+": "+g.Problem {
					t.Errorf("String() = %q", g.String())
				}
			}
			// Warnings only read the settings.
			if again := s.Warnings(); len(again) != len(got) {
				t.Errorf("a second call gave %d warnings, the first %d", len(again), len(got))
			}
		})
	}
}

func warningLines(ws []mapping.SettingsWarning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("\t" + w.Code + " " + w.String() + "\n")
	}
	return b.String()
}
