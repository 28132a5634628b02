package main

import (
	"os"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

// TestConfigurationReferenceListsEveryVariable: docs/configuration.md has a
// row for every environment variable, with its default.
func TestConfigurationReferenceListsEveryVariable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // variable → its default cell
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
			continue
		}
		for _, name := range strings.Split(strings.TrimSpace(cells[1]), ", ") {
			rows[strings.Trim(name, "`")] = strings.TrimSpace(cells[2])
		}
	}
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range params {
		def, ok := rows[p.Key]
		switch {
		case !ok:
			t.Errorf("docs/configuration.md has no row for %s", p.Key)
		case p.HasDefaultValue && !strings.HasPrefix(def, "`"+p.DefaultValue+"`"):
			t.Errorf("docs/configuration.md: %s's default is %s, the code's `%s`", p.Key, def, p.DefaultValue)
		}
	}
}
