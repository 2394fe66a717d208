//go:build linux

package integration

// The README's ssh-mode recipes are the tested ones: this test takes them out of README.md and
// runs them, word for word but for the test sshd's configuration (-F), the place of the ssh
// link and a scratch directory for /srv, against a real sshd whose Host alias is "host".

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// readmeBlocks returns the shell code blocks of the README's ssh-mode section.
func readmeBlocks(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "\n## ssh mode: ")
	end := strings.Index(s[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("README.md has no ssh mode section")
	}
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s[start:start+1+end], -1) {
		blocks = append(blocks, strings.Split(strings.TrimSpace(m[1]), "\n"))
	}
	if len(blocks) != 2 {
		t.Fatalf("the ssh mode section has %d sh blocks, want 2 (the recipes, the ssh link)", len(blocks))
	}
	return blocks
}

func TestREADMERecipes(t *testing.T) {
	for _, tool := range []string{"rsync", "git", "borg", "hg", "restic", "scp", "sftp", "tar"} {
		requireTool(t, tool)
	}
	requireFile(t, sftpServer, "openssh-sftp-server")
	e := newClientEnv(t, harness.SSHDOptions{Alias: "host"})
	blocks := readmeBlocks(t)

	// What the recipes expect to find: on the remote host, under /srv, a git and an hg
	// repository; here a tree to copy, and where to restore it.
	srv := filepath.Join(e.work, "srv")
	up := filepath.Join(e.work, "up")
	gitIn(t, e.work, "init", "-q", "-b", "main", up)
	commit(t, up, "one", 100_000)
	gitIn(t, e.work, "clone", "-q", "--bare", up, filepath.Join(srv, "git", "repo.git"))
	hgrc := filepath.Join(e.work, "hgrc")
	os.WriteFile(hgrc, []byte("[ui]\nusername = t <t@example.org>\n"), 0o644)
	hgRepo := filepath.Join(srv, "hg", "site")
	os.MkdirAll(hgRepo, 0o755)
	os.WriteFile(filepath.Join(hgRepo, "file"), []byte("hg\n"), 0o644)
	for _, argv := range [][]string{{"hg", "init"}, {"hg", "commit", "-q", "-A", "-m", "one"}} {
		r := inDir(t, hgRepo, "", []string{"HGRCPATH=" + hgrc}, argv...)
		if r.code != 0 {
			t.Fatalf("%q: %s", argv, r.stderr)
		}
	}

	env := []string{
		"PATH=" + e.binDir + ":/usr/bin:/bin",
		"BORG_PASSPHRASE=secret", "BORG_BASE_DIR=" + filepath.Join(e.work, "borgbase"),
		"RESTIC_PASSWORD=secret", "RESTIC_CACHE_DIR=" + filepath.Join(e.work, "restic-cache"),
		"HGRCPATH=" + hgrc, "GIT_CONFIG_NOSYSTEM=1",
	}
	linkBin := filepath.Dir(e.linkSSH) // an ssh that is the link with the test's -F
	for i, block := range blocks {
		dir := filepath.Join(e.work, fmt.Sprintf("recipes%d", i))
		src := filepath.Join(dir, "src")
		makeTree(t, src)
		os.WriteFile(filepath.Join(src, "file"), []byte("a file\n"), 0o644)
		os.MkdirAll(filepath.Join(dir, "restored"), 0o755)
		for _, line := range block {
			if strings.HasPrefix(line, "mkdir -p ~/.local/socketpipe-bin") || strings.HasPrefix(line, "ln -s ") {
				continue // the link is made by the test, with the test's configuration
			}
			cmd := strings.ReplaceAll(line, "socketpipe --ssh", "socketpipe --ssh -F "+e.sshd.ClientConfig)
			cmd = strings.ReplaceAll(cmd, "/srv", srv)
			cmd = strings.ReplaceAll(cmd, "~/.local/socketpipe-bin/ssh", filepath.Join(linkBin, "ssh"))
			cmd = strings.ReplaceAll(cmd, "~/.local/socketpipe-bin", linkBin)
			t.Run(line, func(t *testing.T) {
				stdin := ""
				if strings.HasPrefix(line, "sftp ") {
					stdin = "ls\nbye\n"
				}
				r := inDir(t, dir, stdin, append([]string{"HOME=" + e.home, "XDG_CACHE_HOME=" + e.cache, "SOCKETPIPE_SSH_OPTIONS=-v"}, env...),
					"/bin/sh", "-c", cmd)
				if r.code != 0 {
					t.Fatalf("%s: status %d\nstdout: %s\nstderr:\n%s", cmd, r.code, trunc(r.stdout), r.stderr)
				}
				if !strings.HasPrefix(line, "SOCKETPIPE_SSH_OPTIONS=") {
					how := "direct"
					if strings.HasPrefix(line, "scp ") || strings.HasPrefix(line, "sftp ") {
						how = "subsystem"
					}
					served(t, r.stderr, how)
				}
			})
		}
		if i == 0 {
			compareTrees(t, src, filepath.Join(srv, "dst"))
			compareTrees(t, src, filepath.Join(srv, "www"))
			compareTrees(t, src, filepath.Join(dir, "restored"))
			if gitIn(t, filepath.Join(dir, "repo"), "rev-parse", "HEAD") != gitIn(t, up, "rev-parse", "HEAD") {
				t.Errorf("the cloned repository differs")
			}
			if _, err := os.Stat(filepath.Join(dir, "site", "file")); err != nil {
				t.Errorf("hg clone: %v", err)
			}
		} else {
			if b, err := os.ReadFile(filepath.Join(srv, "file")); err != nil || string(b) != "a file\n" {
				t.Errorf("scp: %q, %v", b, err)
			}
		}
	}
}
