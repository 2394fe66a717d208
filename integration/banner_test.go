//go:build linux

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// TestBannerEscaped: an sshd whose Banner file holds terminal escape sequences (a window
// title, a cleared screen, colours, the 8-bit CSI, invalid UTF-8) reaches the terminal as
// OpenSSH's ssh shows it, the oracle: each byte of a control character or of invalid UTF-8 as
// \ooo, line breaks, tabs and printable UTF-8 as they are. Native and executed logins alike.
func TestBannerEscaped(t *testing.T) {
	t.Parallel()
	banner := "Authorized use only\r\n\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m\tcaf\u00e9\n\u009b1m c1 \xff\xfe\n"
	shown := "Authorized use only\r\n\\033]0;owned\\007\\033[2J\\033[31mred\\033[0m\tcaf\u00e9\n\\302\\2331m c1 \\377\\376\n"
	file := filepath.Join(t.TempDir(), "banner")
	if err := os.WriteFile(file, []byte(banner), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRemote(t, harness.SSHDOptions{ExtraConfig: []string{"Banner " + file}})
	// ssh shows a banner from LogLevel INFO up; the harness's configuration says ERROR.
	login := append([]string{"ssh", "-o", "LogLevel=INFO"}, r.sshd.SSHArgs()[1:]...)
	env := []string{"LC_ALL=C.UTF-8"} // ssh escapes every non-ASCII byte in the C locale

	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	ssh := exec.CommandContext(ctx, login[0], append(login[1:], "true")...)
	ssh.Env = append(cleanEnv(""), env...)
	var sshErr strings.Builder
	ssh.Stderr = &sshErr
	if err := ssh.Run(); err != nil {
		t.Fatalf("ssh: %v\n%s", err, sshErr.String())
	}
	if sshErr.String() != shown {
		t.Fatalf("OpenSSH's ssh shows the banner as\n%q\nthe test expects\n%q", sshErr.String(), shown)
	}

	for _, x := range [][]string{nil, {"-x"}} {
		name := "native"
		if x != nil {
			name = "exec"
		}
		t.Run(name, func(t *testing.T) {
			res := r.runWith(t, runOpts{env: env}, args(x, block("-l", login...), block("-r", "echo", "hi"), block("-o", "cat"))...)
			want(t, res, 0)
			if res.stdout != "hi\n" {
				t.Errorf("stdout %q", res.stdout)
			}
			if !strings.Contains(res.stderr, shown) || strings.Contains(res.stderr, "\x1b") {
				t.Errorf("the banner reached the terminal as\n%q\nwant, as ssh shows it,\n%q", res.stderr, shown)
			}
		})
	}
	r.noneLeft(t)
}
