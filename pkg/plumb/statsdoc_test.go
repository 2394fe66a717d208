package plumb

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestStatsDoc keeps docs/stats.md and Stats the same schema: the table lists exactly the
// struct's JSON fields, and the example decodes into the struct with nothing left over.
func TestStatsDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/stats.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.\\[\\]]+)` \\|").FindAllSubmatch(doc, -1) {
		documented = append(documented, string(m[1]))
	}
	var actual []string
	jsonFields(reflect.TypeFor[Stats](), "", &actual)
	if !slices.Equal(documented, actual) {
		t.Errorf("docs/stats.md lists\n\t%v\nthe struct has\n\t%v", documented, actual)
	}

	example := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(doc)
	if example == nil {
		t.Fatal("no JSON example in docs/stats.md")
	}
	dec := json.NewDecoder(bytes.NewReader(example[1]))
	dec.DisallowUnknownFields()
	var s Stats
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("the example: %v", err)
	}
	if s.Version != StatsVersion {
		t.Errorf("the example is version %d", s.Version)
	}
}

// jsonFields lists t's JSON field names depth first, as "a", "a.b" and "a[].b".
func jsonFields(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		*out = append(*out, prefix+name)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			jsonFields(ft, prefix+name+".", out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			jsonFields(ft.Elem(), prefix+name+"[].", out)
		}
	}
}
