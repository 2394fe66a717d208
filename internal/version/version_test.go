package version

import "testing"

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.0":            "v1.2.0",
		"5a51b73-dirty":     "5a51b73-dirty",
		"v0.0.0-2026+dirty": "v0.0.0-2026+dirty",
		"":                  "devel",
		"..":                "devel",
		"../../etc":         ".._.._etc",
		"a b\n":             "a_b",
		"v1/../../x\x00":    "v1_.._.._x_",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
	if String() == "" {
		t.Error("String() is empty")
	}
}
