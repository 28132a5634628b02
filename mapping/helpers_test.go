package mapping_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// loadCases decodes every *.json file in testdata/dir into a T, strictly
// (unknown fields are an error, so a typo in a case file cannot silently
// weaken it), and returns them by file name.
func loadCases[T any](t *testing.T, dir string) map[string]T {
	t.Helper()
	dir = filepath.Join("testdata", dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	cases := map[string]T{}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		var c T
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		cases[strings.TrimSuffix(e.Name(), ".json")] = c
	}
	if len(cases) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	return cases
}

// sortedKeys returns a map's keys in order, so that subtests run in a stable
// order.
func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// toAny round-trips v through JSON into a generic value.
func toAny(t *testing.T, v any) any {
	t.Helper()
	var raw []byte
	switch v := v.(type) {
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			t.Fatalf("marshal %T: %v", v, err)
		}
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", raw, err)
	}
	return out
}

// assertJSONEqual compares got (any value, marshalled) with want (raw JSON)
// semantically and reports every differing path.
func assertJSONEqual(t *testing.T, got any, want json.RawMessage) {
	t.Helper()
	g, w := toAny(t, got), toAny(t, want)
	if reflect.DeepEqual(g, w) {
		return
	}
	var diffs []string
	jsonDiff("$", g, w, &diffs)
	gotJSON, _ := json.MarshalIndent(g, "", "  ")
	wantJSON, _ := json.MarshalIndent(w, "", "  ")
	t.Errorf("mismatch:\n  %s\ngot:\n%s\nwant:\n%s", strings.Join(diffs, "\n  "), gotJSON, wantJSON)
}

// jsonDiff lists the paths where two generic JSON values differ.
func jsonDiff(path string, got, want any, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range g {
			keys[k] = true
		}
		for k := range w {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			gv, gok := g[k]
			wv, wok := w[k]
			switch {
			case !gok:
				*out = append(*out, fmt.Sprintf("%s.%s: missing, want %s", path, k, compact(wv)))
			case !wok:
				*out = append(*out, fmt.Sprintf("%s.%s: unexpected %s", path, k, compact(gv)))
			default:
				jsonDiff(path+"."+k, gv, wv, out)
			}
		}
		return
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		for i := range w {
			jsonDiff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i], out)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		*out = append(*out, fmt.Sprintf("%s: got %s, want %s", path, compact(got), compact(want)))
	}
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}
