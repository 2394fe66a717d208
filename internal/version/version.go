// Package version is socketpipe's version: the one the build stamped, else the module's.
//
// make build stamps `git describe` with
//
//	-ldflags "-X github.com/socketpipe/socketpipe/internal/version.stamp=$(VERSION)"
//
// A `go install github.com/socketpipe/socketpipe/cmd/socketpipe@v1.2.0` has no stamp and
// reports the module version Go recorded, "v1.2.0". The two halves agree by their protocol
// number, not by this string, which is for people and names the self-deploy cache.
package version

import (
	"runtime/debug"
	"strings"
	"sync"
)

// stamp is set by the linker (see the package doc).
var stamp string

var cached = sync.OnceValue(func() string {
	v := stamp
	if v == "" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return clean(v)
})

// String returns the version: the stamp, else the main module's version from the build
// information, else "devel". It holds only letters, digits and ".+-_", so it can name a
// directory on the remote host.
func String() string { return cached() }

func clean(v string) string {
	v = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".+-_", r):
			return r
		}
		return '_'
	}, strings.TrimSpace(v))
	if len(v) > 64 {
		v = v[:64]
	}
	if v == "" || strings.Trim(v, "._") == "" {
		return "devel"
	}
	return v
}
