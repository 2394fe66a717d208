package socketpipe

import (
	"fmt"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/pkg/deploy"
	"github.com/socketpipe/socketpipe/pkg/plumb"
)

// A deployment to a host of another target that cannot be made says which build is missing
// and the command that makes it; a stale build in the directory says to rebuild the set.
func TestDeployErrorNamesTheBuild(t *testing.T) {
	notExist := fmt.Errorf("/opt/sp/lib/socketpipe/socketpipe-linux-arm64 does not exist")
	for _, c := range []struct {
		name      string
		err       error
		msg, hint string
	}{
		{"a build-all target",
			&deploy.NoBuildError{System: "Linux", Machine: "aarch64", Target: deploy.Target{GOOS: "linux", GOARCH: "arm64"},
				Path: "/opt/sp/lib/socketpipe/socketpipe-linux-arm64", Err: notExist},
			"remote host is Linux/aarch64, and there is no build for linux/arm64 to deploy: " + notExist.Error(),
			"build it with `make build-all` in socketpipe's source tree and put bin/socketpipe-linux-arm64 in /opt/sp/lib/socketpipe "},
		{"another target",
			&deploy.NoBuildError{System: "Linux", Machine: "s390x", Target: deploy.Target{GOOS: "linux", GOARCH: "s390x"},
				Path: "/b/socketpipe-linux-s390x", Err: fmt.Errorf("/b/socketpipe-linux-s390x does not exist")},
			"remote host is Linux/s390x, and there is no build for linux/s390x to deploy: /b/socketpipe-linux-s390x does not exist",
			"build it with `GOOS=linux GOARCH=s390x make build` in socketpipe's source tree and copy bin/socketpipe to socketpipe-linux-s390x in /b "},
		{"ARMv6",
			&deploy.NoBuildError{System: "Linux", Machine: "armv6l", Target: deploy.Target{GOOS: "linux", GOARCH: "arm"},
				Path: "/b/socketpipe-linux-arm", Err: fmt.Errorf("/b/socketpipe-linux-arm is built with GOARM=7, which does not run on armv6l")},
			"remote host is Linux/armv6l, and there is no build for linux/arm to deploy: /b/socketpipe-linux-arm is built with GOARM=7, which does not run on armv6l",
			"build it with `GOOS=linux GOARCH=arm GOARM=6 make build` in socketpipe's source tree and copy bin/socketpipe to socketpipe-linux-arm in /b "},
		{"no target",
			&deploy.PlatformError{System: "SunOS", Machine: "i86pc"},
			"remote host is SunOS/i86pc, a system or architecture that no build can be deployed to",
			"install socketpipe built for SunOS/i86pc on the remote host: on its PATH, or name it with --remote-path"},
		{"a stale build",
			&buildVersionError{path: "/b/socketpipe-linux-arm64", err: &plumb.VersionError{Local: "2.0", LocalProtocol: 3, Remote: "1.0", RemoteProtocol: 2}},
			"the build deployed from /b/socketpipe-linux-arm64 is of another version: ",
			"rebuild the builds in /b from this socketpipe's source (make build-all, make install)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := (&Pipe{}).deployError(c.err, nil)
			if e == nil {
				t.Fatal("not reported as a deployment's failure")
			}
			if !strings.HasPrefix(e.Msg, c.msg) || len(e.Hints) != 1 || !strings.HasPrefix(e.Hints[0], c.hint) || e.Status != ExitFailure {
				t.Fatalf("reported as %q, hints %q, status %d; want %q, a hint %q..., status %d", e.Msg, e.Hints, e.Status, c.msg, c.hint, ExitFailure)
			}
			if strings.HasPrefix(c.hint, "build it") && !strings.Contains(e.Hints[0], "--deploy-dir") {
				t.Fatalf("the hint %q does not name --deploy-dir", e.Hints[0])
			}
		})
	}
}

// A data connection lost while the login's connection works says so, and points to the mode
// that carries the data over the login's connection.
func TestDataLostHint(t *testing.T) {
	lost := &plumb.DataLostError{Peer: "192.0.2.7:40100", Silence: 30e9}
	e := (&Pipe{}).runError(lost, nil, true)
	if e.Msg != lost.Error() || len(e.Hints) != 1 || !strings.Contains(e.Hints[0], "-m ssh") || e.Status != ExitFailure {
		t.Fatalf("reported as %q, hints %q, status %d", e.Msg, e.Hints, e.Status)
	}
}
