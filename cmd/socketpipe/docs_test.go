package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// usageOptions returns every option the --help text names: the option column of the body,
// the bundled single letters of the synopsis ("-bevx"), and --help and --version.
func usageOptions(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[-([a-z]{2,})\]`).FindAllStringSubmatch(usageText, -1) {
		for _, c := range m[1] {
			seen["-"+string(c)] = true
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(--?[a-z][a-z-]*)`).FindAllStringSubmatch(usageText, -1) {
		seen[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?:^|[\s\[|])(--?[a-z][a-z-]*)`).FindAllStringSubmatch(usageText, -1) {
		if strings.HasPrefix(m[1], "--") || len(m[1]) == 2 {
			seen[m[1]] = true
		}
	}
	var opts []string
	for o := range seen {
		opts = append(opts, o)
	}
	slices.Sort(opts)
	for _, want := range []string{"-l", "-r", "-i", "-o", "-b", "-h", "-t", "-m", "-e", "-x", "-v", "--ports", "--cipher", "--remote-path", "--help", "--version"} {
		if !seen[want] {
			t.Errorf("usage text: found no %s; the option scan is broken or the usage lost it", want)
		}
	}
	return opts
}

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// manOptions returns the options the man page's OPTIONS section describes (its .TP tags), with
// roff's escapes undone.
func manOptions(man string) []string {
	start := strings.Index(man, "\n.SH OPTIONS")
	end := strings.Index(man[start+1:], "\n.SH ")
	sec := man[start : start+1+end]
	var opts []string
	lines := strings.Split(sec, "\n")
	for i, l := range lines {
		if l != ".TP" || i+1 >= len(lines) {
			continue
		}
		tag := strings.ReplaceAll(lines[i+1], `\-`, "-")
		if m := regexp.MustCompile(`^\.B[IR]? "?(--?[a-z][a-z-]*)`).FindStringSubmatch(tag); m != nil {
			opts = append(opts, m[1])
		}
	}
	return opts
}

// TestDocsMatchUsage keeps --help, socketpipe.1 and README.md telling the same story: every
// option in the usage text has an entry in the man page's OPTIONS and appears in the README,
// and the man page describes no option the usage text lacks except the hidden --serve.
func TestDocsMatchUsage(t *testing.T) {
	opts := usageOptions(t)
	man := readDoc(t, "../../socketpipe.1")
	readme := readDoc(t, "../../README.md")
	described := manOptions(man)
	for _, o := range opts {
		if !slices.Contains(described, o) {
			t.Errorf("socketpipe.1: OPTIONS has no entry for %s, which --help lists", o)
		}
		if !regexp.MustCompile("`" + regexp.QuoteMeta(o) + "[ `]").MatchString(readme) {
			t.Errorf("README.md: %s, which --help lists, does not appear as `%s ...`", o, o)
		}
	}
	for _, o := range described {
		if o != "--serve" && !slices.Contains(opts, o) {
			t.Errorf("socketpipe.1 describes %s, which --help does not list", o)
		}
	}
	if !slices.Contains(described, "--serve") {
		t.Errorf("socketpipe.1: the hidden remote-half mode --serve is not described")
	}
	if strings.Contains(usageText, "--serve") {
		t.Errorf("--help mentions --serve, which is for the login command only")
	}
	// The modes and ciphers the usage names are the ones the man page explains.
	for _, w := range []string{"auto", "back", "reverse", "ssh", "aes-256-gcm", "chacha20-poly1305"} {
		if !strings.Contains(usageText, w) {
			t.Errorf("usage text no longer names %q; update this test and the docs", w)
		}
		if !strings.Contains(strings.ReplaceAll(man, `\-`, "-"), w) || !strings.Contains(readme, w) {
			t.Errorf("%q from --help is missing from socketpipe.1 or README.md", w)
		}
	}
}

// TestManPageOriginalExamples keeps the original manual's three examples in the man page.
func TestManPageOriginalExamples(t *testing.T) {
	man := strings.ReplaceAll(readDoc(t, "../../socketpipe.1"), `\-`, "-")
	readme := readDoc(t, "../../README.md")
	for _, ex := range []string{
		"socketpipe -b -i { tar cf - / } -l { ssh remotehost } -r { dd of=/dev/st0 bs=32k }",
		"socketpipe -b -l { ssh remotehost } -r { dd if=/dev/st0 bs=32k } -o { tar xpf - /home/luser }",
		"socketpipe -b -i { tar cf - / } -l { ssh remotehost } -r { bzip2 -c } -o { dd of=/dev/st0 bs=32k }",
	} {
		if !strings.Contains(man, ex) {
			t.Errorf("socketpipe.1 lacks the original's example %q", ex)
		}
		if !strings.Contains(readme, ex) {
			t.Errorf("README.md lacks the original's example %q", ex)
		}
	}
}
