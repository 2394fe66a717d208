//go:build linux

package integration

// Issue 13: every tool that runs ssh works through `socketpipe --ssh` and through socketpipe
// linked as ssh, byte for byte, against the real sshd: git, borg, hg, restic, rsync, scp (both
// protocols), sftp and tar. The tools are the ones Debian ships (.ci/run installs them); under
// CI=true a missing one fails its test.

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
	"github.com/socketpipe/socketpipe/internal/testenv"
)

// sftpServer is Debian's sftp-server (openssh-sftp-server), which restic's sftp.command runs.
const sftpServer = "/usr/lib/openssh/sftp-server"

// clientEnv is an sshd and the two ways a tool can be pointed at socketpipe.
type clientEnv struct {
	*sshModeEnv
	work    string // scratch directory, the tools' working directory
	home    string // HOME of the tools (git, borg, hg and restic keep their settings there)
	cache   string // XDG_CACHE_HOME of socketpipe: the forced-command logins
	linkDir string // ssh -> socketpipe
	wrapper string // a program (for GIT_SSH, scp -S, sftp -S) that runs socketpipe --ssh -F config
	linkSSH string // the same through the link: a program named ssh that runs the link with -F
}

func newClientEnv(t *testing.T, opts harness.SSHDOptions) *clientEnv {
	t.Helper()
	e := &clientEnv{sshModeEnv: newSSHModeEnvWith(t, opts), work: t.TempDir()}
	e.home = filepath.Join(e.work, "home")
	e.cache = filepath.Join(e.work, "cache")
	e.linkDir = filepath.Join(e.work, "link")
	for _, d := range []string{e.home, e.cache, e.linkDir, filepath.Join(e.work, "bin"), filepath.Join(e.work, "binssh")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(e.sp, filepath.Join(e.linkDir, "ssh")); err != nil {
		t.Fatal(err)
	}
	e.wrapper = filepath.Join(e.work, "bin", "sp-ssh")
	writeScript(t, filepath.Dir(e.wrapper), "sp-ssh", fmt.Sprintf("exec %s --ssh -F %s \"$@\"\n", e.sp, e.sshd.ClientConfig))
	e.linkSSH = filepath.Join(e.work, "binssh", "ssh")
	writeScript(t, filepath.Dir(e.linkSSH), "ssh", fmt.Sprintf("exec %s -F %s \"$@\"\n", filepath.Join(e.linkDir, "ssh"), e.sshd.ClientConfig))
	return e
}

// via is one way to reach socketpipe from a tool.
type via struct {
	name string
	rsh  string   // the ssh command line a tool is given (GIT_SSH_COMMAND, BORG_RSH, -e)
	prog string   // a program without arguments (GIT_SSH, scp -S)
	env  []string // PATH for the link
}

// vias are socketpipe --ssh named as the ssh command, and socketpipe linked as ssh and found
// first on PATH, where the real ssh comes after it.
func (e *clientEnv) vias() []via {
	return []via{
		{name: "socketpipe --ssh", rsh: e.rsh(), prog: e.wrapper},
		{name: "ssh link", rsh: "ssh -F " + e.sshd.ClientConfig, prog: e.linkSSH,
			env: []string{"PATH=" + e.linkDir + ":/usr/bin:/bin"}},
	}
}

// tool runs a tool in the scratch directory with -v on socketpipe's side, and fails the test
// unless it exits 0.
func (e *clientEnv) tool(t *testing.T, v via, env []string, argv ...string) sshResult {
	t.Helper()
	r := e.try(t, v, env, argv...)
	if r.code != 0 {
		t.Fatalf("%s through %s: status %d\nstdout: %s\nstderr:\n%s", strings.Join(argv, " "), v.name, r.code, trunc(r.stdout), r.stderr)
	}
	return r
}

func (e *clientEnv) try(t *testing.T, v via, env []string, argv ...string) sshResult {
	t.Helper()
	all := append([]string{"HOME=" + e.home, "XDG_CACHE_HOME=" + e.cache, "SOCKETPIPE_SSH_OPTIONS=-v"}, v.env...)
	all = append(all, env...)
	return inDir(t, e.work, "", all, argv...)
}

// inDir runs argv in dir, with stdin and env added to the test's environment.
func inDir(t *testing.T, dir, stdin string, env []string, argv ...string) sshResult {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return runCmd(t, cmd, stdin)
}

// served fails the test unless every socketpipe run in the -v story was served as want says:
// "direct" (the data connection, back or reverse), "subsystem" or "pass-through"; never by
// handing over to the ssh binary.
func served(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Contains(stderr, "handing over to") {
		t.Fatalf("socketpipe handed over to the ssh binary:\n%s", stderr)
	}
	// Each run says once what it serves (ssh -G, which git runs first, says nothing).
	runs := strings.Count(stderr, "] ssh mode: remote command ") + strings.Count(stderr, `] subsystem "`)
	if runs == 0 {
		t.Fatalf("no socketpipe -v story:\n%s", stderr)
	}
	var n int
	switch want {
	case "direct":
		n = strings.Count(stderr, "data connection: back (") + strings.Count(stderr, "data connection: reverse (")
	case "subsystem":
		n = strings.Count(stderr, "requested on the native SSH connection")
	case "pass-through":
		n = strings.Count(stderr, "pass-through: ")
	}
	if n != runs {
		t.Fatalf("%d of %d socketpipe runs served %s:\n%s", n, runs, want, stderr)
	}
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit adds a commit with a few files, one of them large enough for a pack of several
// round trips.
func commit(t *testing.T, dir, msg string, size int) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	os.WriteFile(filepath.Join(dir, msg+".bin"), b, 0o644)
	os.WriteFile(filepath.Join(dir, msg+".txt"), []byte(msg+"\n"), 0o644)
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", msg)
}

// git clone, ls-remote, fetch and push, with GIT_SSH_COMMAND and GIT_SSH, in protocol
// versions 2 and 0.
func TestClientGit(t *testing.T) {
	requireTool(t, "git")
	e := newClientEnv(t, harness.SSHDOptions{ExtraConfig: []string{"AcceptEnv GIT_PROTOCOL"}})
	up := filepath.Join(e.work, "up")
	gitIn(t, e.work, "init", "-q", "-b", "main", up)
	commit(t, up, "one", 300_000)
	commit(t, up, "two", 5)
	remote := filepath.Join(e.work, "remote.git")
	gitIn(t, e.work, "clone", "-q", "--bare", up, remote)
	gitIn(t, up, "remote", "add", "origin", remote)

	i := 0
	for _, v := range e.vias() {
		for _, how := range []string{"GIT_SSH_COMMAND", "GIT_SSH"} {
			for _, proto := range []string{"2", "0"} {
				i++
				name := fmt.Sprintf("%s/%s/v%s", v.name, how, proto)
				t.Run(name, func(t *testing.T) {
					env := []string{"GIT_SSH_COMMAND=" + v.rsh, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t",
						"GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org"}
					if how == "GIT_SSH" {
						env = []string{"GIT_SSH=" + v.prog, "GIT_CONFIG_NOSYSTEM=1"}
					}
					git := func(args ...string) []string {
						return append([]string{"git", "-c", "protocol.version=" + proto}, args...)
					}
					url := e.sshd.Alias + ":" + remote
					// ls-remote, with the URL's port given to ssh as -p.
					r := e.tool(t, v, env, git("ls-remote", fmt.Sprintf("ssh://%s:%d%s", e.sshd.Alias, e.sshd.Port, remote))...)
					if want := gitIn(t, e.work, "ls-remote", remote); strings.TrimSpace(r.stdout) != want {
						t.Fatalf("ls-remote: %q, want %q", r.stdout, want)
					}
					served(t, r.stderr, "direct")
					clone := filepath.Join(e.work, fmt.Sprintf("clone%d", i))
					r = e.tool(t, v, env, git("clone", "-q", url, clone)...)
					served(t, r.stderr, "direct")
					if a, b := gitIn(t, clone, "rev-parse", "HEAD"), gitIn(t, up, "rev-parse", "HEAD"); a != b {
						t.Fatalf("cloned HEAD %s, upstream %s", a, b)
					}
					gitIn(t, clone, "fsck", "--strict")
					// push a commit...
					commit(t, clone, fmt.Sprintf("pushed%d", i), 200_000)
					r = e.tool(t, v, env, git("-C", clone, "push", "-q", "origin", "main")...)
					served(t, r.stderr, "direct")
					if a, b := gitIn(t, remote, "rev-parse", "main"), gitIn(t, clone, "rev-parse", "HEAD"); a != b {
						t.Fatalf("pushed %s, remote has %s", b, a)
					}
					// ...and fetch one made elsewhere.
					gitIn(t, up, "pull", "-q", "origin", "main")
					commit(t, up, fmt.Sprintf("fetched%d", i), 100_000)
					gitIn(t, up, "push", "-q", "origin", "main")
					r = e.tool(t, v, env, git("-C", clone, "fetch", "-q", "origin")...)
					served(t, r.stderr, "direct")
					if a, b := gitIn(t, clone, "rev-parse", "origin/main"), gitIn(t, up, "rev-parse", "HEAD"); a != b {
						t.Fatalf("fetched %s, upstream %s", a, b)
					}
					gitIn(t, clone, "fsck", "--strict")
				})
			}
		}
	}
}

// borg init, create, list and extract with BORG_RSH.
func TestClientBorg(t *testing.T) {
	requireTool(t, "borg")
	e := newClientEnv(t, harness.SSHDOptions{})
	src := filepath.Join(e.work, "src")
	makeTree(t, src)
	for i, v := range e.vias() {
		t.Run(v.name, func(t *testing.T) {
			repo := fmt.Sprintf("%s:%s/borg%d", e.sshd.Alias, e.work, i)
			borgRoundTrip(t, e, v, []string{"BORG_RSH=" + v.rsh}, repo, src, fmt.Sprintf("out%d", i), "direct")
		})
	}
}

// borgRoundTrip backs src up into repo, lists and extracts it, and compares.
func borgRoundTrip(t *testing.T, e *clientEnv, v via, env []string, repo, src, out, how string) {
	t.Helper()
	env = append(env, "BORG_PASSPHRASE=secret", "BORG_BASE_DIR="+filepath.Join(e.work, "borgbase-"+out),
		"BORG_RELOCATED_REPO_ACCESS_IS_OK=yes")
	r := e.tool(t, v, env, "borg", "init", "-e", "repokey", repo)
	served(t, r.stderr, how)
	r = e.tool(t, v, env, "sh", "-c", fmt.Sprintf("cd %s && exec borg create --stats %s::first .", src, repo))
	served(t, r.stderr, how)
	r = e.tool(t, v, env, "borg", "list", "--short", repo)
	served(t, r.stderr, how)
	if strings.TrimSpace(r.stdout) != "first" {
		t.Fatalf("borg list: %q", r.stdout)
	}
	dst := filepath.Join(e.work, out)
	os.MkdirAll(dst, 0o755)
	r = e.tool(t, v, env, "sh", "-c", fmt.Sprintf("cd %s && exec borg extract %s::first", dst, repo))
	served(t, r.stderr, how)
	compareTrees(t, src, dst)
}

// hg clone -e, push and pull.
func TestClientHg(t *testing.T) {
	requireTool(t, "hg")
	e := newClientEnv(t, harness.SSHDOptions{})
	hgrc := filepath.Join(e.work, "hgrc")
	os.WriteFile(hgrc, []byte("[ui]\nusername = t <t@example.org>\n"), 0o644)
	hgEnv := []string{"HGRCPATH=" + hgrc, "HGPLAIN=1"}
	hg := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("hg", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), hgEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("hg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	up := filepath.Join(e.work, "up")
	os.Mkdir(up, 0o755)
	hg(up, "init")
	makeTree(t, filepath.Join(up, "tree"))
	os.Remove(filepath.Join(up, "tree", "link"))
	hg(up, "commit", "-q", "-A", "-m", "one")
	for i, v := range e.vias() {
		t.Run(v.name, func(t *testing.T) {
			clone := filepath.Join(e.work, fmt.Sprintf("clone%d", i))
			url := fmt.Sprintf("ssh://%s/%s", e.sshd.Alias, up)
			r := e.tool(t, v, hgEnv, "hg", "clone", "-e", v.rsh, url, clone)
			served(t, r.stderr, "direct")
			compareFiles(t, filepath.Join(up, "tree"), filepath.Join(clone, "tree"))
			os.WriteFile(filepath.Join(clone, fmt.Sprintf("new%d", i)), []byte("pushed\n"), 0o644)
			hg(clone, "commit", "-q", "-A", "-m", "pushed")
			r = e.tool(t, v, hgEnv, "hg", "-R", clone, "push", "-e", v.rsh, url)
			served(t, r.stderr, "direct")
			if a, b := hg(up, "log", "-r", "tip", "-T", "{node}"), hg(clone, "log", "-r", "tip", "-T", "{node}"); a != b {
				t.Fatalf("pushed %s, upstream has %s", b, a)
			}
			hg(up, "update", "-q", "tip")
			os.WriteFile(filepath.Join(up, fmt.Sprintf("up%d", i)), []byte("pulled\n"), 0o644)
			hg(up, "commit", "-q", "-A", "-m", "upstream")
			r = e.tool(t, v, hgEnv, "hg", "-R", clone, "pull", "-u", "-e", v.rsh, url)
			served(t, r.stderr, "direct")
			if a, b := hg(up, "log", "-r", "tip", "-T", "{node}"), hg(clone, "log", "-r", "tip", "-T", "{node}"); a != b {
				t.Fatalf("pulled %s, upstream has %s", b, a)
			}
			hg(clone, "verify", "-q")
		})
	}
}

// restic with the sftp backend: sftp-server on socketpipe's data connection, and the sftp
// subsystem as restic asks for it by default (ssh host -s sftp), served in-process.
func TestClientRestic(t *testing.T) {
	requireTool(t, "restic")
	requireFile(t, sftpServer, "openssh-sftp-server")
	e := newClientEnv(t, harness.SSHDOptions{})
	src := filepath.Join(e.work, "src")
	makeTree(t, src)
	os.Remove(filepath.Join(src, "link")) // restic restores it, but with its own mtime rules
	for i, v := range e.vias() {
		for _, how := range []string{"direct", "subsystem"} {
			t.Run(v.name+"/"+how, func(t *testing.T) {
				command := fmt.Sprintf("%s %s %s", v.rsh, e.sshd.Alias, sftpServer)
				if how == "subsystem" {
					command = fmt.Sprintf("%s %s -s sftp", v.rsh, e.sshd.Alias)
				}
				repo := fmt.Sprintf("sftp:%s:%s/restic-%d-%s", e.sshd.Alias, e.work, i, how)
				env := []string{"RESTIC_PASSWORD=secret", "RESTIC_CACHE_DIR=" + filepath.Join(e.work, "restic-cache")}
				restic := func(args ...string) sshResult {
					t.Helper()
					r := e.tool(t, v, env, append([]string{"restic", "-o", "sftp.command=" + command, "-r", repo}, args...)...)
					served(t, r.stderr, how)
					return r
				}
				restic("init")
				restic("backup", "--quiet", src)
				r := restic("snapshots", "--compact")
				if !strings.Contains(r.stdout, "1 snapshots") {
					t.Fatalf("restic snapshots: %s", r.stdout)
				}
				dst := filepath.Join(e.work, fmt.Sprintf("restored-%d-%s", i, how))
				restic("restore", "latest", "--target", dst)
				compareTrees(t, src, filepath.Join(dst, src))
				restic("check")
			})
		}
	}
}

// compareFiles is compareTrees for what a version control system keeps: the regular files, with
// their contents and whether they are executable.
func compareFiles(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			fi, _ := d.Info()
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("x=%v %x", fi.Mode()&0o100 != 0, sha256.Sum256(c))
			return nil
		})
		return m
	}
	ma, mb := list(a), list(b)
	if len(ma) < 10 || !maps.Equal(ma, mb) {
		t.Fatalf("%s has %d files, %s %d, or they differ:\n%v\n%v", a, len(ma), b, len(mb), ma, mb)
	}
}

func requireFile(t *testing.T, path, pkg string) {
	t.Helper()
	_, err := os.Stat(path)
	testenv.Need(t, fmt.Sprintf("%s (install %s)", path, pkg), err)
}

// scp (SFTP protocol and -O), sftp, on a PATH without ssh: the subsystem is requested on the
// native connection and scp -O's remote scp has the data connection, so no ssh binary runs.
func TestClientScpSftp(t *testing.T) {
	requireTool(t, "scp")
	requireTool(t, "sftp")
	e := newClientEnv(t, harness.SSHDOptions{})
	src := filepath.Join(e.work, "src")
	makeTree(t, src)
	os.Remove(filepath.Join(src, "link")) // scp follows symlinks
	file := filepath.Join(src, "a", "big")
	noSSH := []string{"PATH=" + e.linkDir + ":" + filepath.Dir(e.wrapper)} // socketpipe's link only
	for i, v := range e.vias() {
		v.env = noSSH
		t.Run(v.name, func(t *testing.T) {
			for _, proto := range []struct{ name, flag, how string }{{"sftp protocol", "", "subsystem"}, {"-O", "-O", "direct"}} {
				scp := func(args ...string) {
					t.Helper()
					argv := []string{"/usr/bin/scp", "-S", v.prog}
					if proto.flag != "" {
						argv = append(argv, proto.flag)
					}
					r := e.tool(t, v, nil, append(argv, args...)...)
					served(t, r.stderr, proto.how)
				}
				dir := filepath.Join(e.work, fmt.Sprintf("scp%d%s", i, proto.flag))
				os.MkdirAll(dir, 0o755)
				scp(file, e.sshd.Alias+":"+dir+"/big")
				scp(e.sshd.Alias+":"+dir+"/big", dir+"/back")
				if fileSum(t, file) != fileSum(t, dir+"/back") {
					t.Fatalf("scp %s: the file came back different", proto.name)
				}
				scp("-r", src, e.sshd.Alias+":"+dir+"/tree")
				compareTrees(t, src, dir+"/tree")
				scp("-r", e.sshd.Alias+":"+dir+"/tree", dir+"/treeback")
				compareTrees(t, src, dir+"/treeback")
			}
			dir := filepath.Join(e.work, fmt.Sprintf("sftp%d", i))
			os.MkdirAll(dir, 0o755)
			batch := fmt.Sprintf("put %s %s/up\nget %s/up %s/down\nls -l %s\n", file, dir, dir, dir, dir)
			r := inDir(t, e.work, batch, append([]string{"SOCKETPIPE_SSH_OPTIONS=-v", "XDG_CACHE_HOME=" + e.cache}, noSSH...),
				"/usr/bin/sftp", "-S", v.prog, "-b", "-", e.sshd.Alias)
			if r.code != 0 || !strings.Contains(r.stdout, "up") {
				t.Fatalf("sftp: status %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			served(t, r.stderr, "subsystem")
			if fileSum(t, file) != fileSum(t, dir+"/down") {
				t.Fatalf("sftp: the file came back different")
			}
		})
	}
	// A subsystem the server does not have is refused, as with ssh: 255 and a message.
	r := inDir(t, e.work, "", noSSH, e.sp, "--ssh", "-F", e.sshd.ClientConfig, "-s", e.sshd.Alias, "no-such-subsystem")
	if r.code != 255 || !strings.Contains(r.stderr, "refused to run subsystem no-such-subsystem") {
		t.Fatalf("an unknown subsystem: status %d, stderr %q", r.code, r.stderr)
	}
}

// rsync and tar through the link (socketpipe --ssh has TestSSHModeRsync and TestSSHModeTar).
func TestClientRsyncTarLink(t *testing.T) {
	requireTool(t, "rsync")
	e := newClientEnv(t, harness.SSHDOptions{})
	src := filepath.Join(e.work, "src")
	makeTree(t, src)
	v := e.vias()[1]
	dst := filepath.Join(e.work, "rsynced")
	r := e.tool(t, v, nil, "rsync", "-a", "-e", v.rsh, src+"/", e.sshd.Alias+":"+dst+"/")
	served(t, r.stderr, "direct")
	compareTrees(t, src, dst)
	back := filepath.Join(e.work, "rsyncback")
	r = e.tool(t, v, nil, "rsync", "-a", "-e", v.rsh, e.sshd.Alias+":"+dst+"/", back+"/")
	served(t, r.stderr, "direct")
	compareTrees(t, src, back)
	up := filepath.Join(e.work, "tarred")
	r = e.tool(t, v, nil, "sh", "-c", fmt.Sprintf("tar cf - -C %s . | %s %s 'mkdir -p %s && tar xf - -C %s'", src, v.rsh, e.sshd.Alias, up, up))
	served(t, r.stderr, "direct")
	compareTrees(t, src, up)
	down := filepath.Join(e.work, "untarred")
	os.Mkdir(down, 0o755)
	r = e.tool(t, v, nil, "sh", "-c", fmt.Sprintf("%s %s tar cf - -C %s . | tar xf - -C %s", v.rsh, e.sshd.Alias, src, down))
	served(t, r.stderr, "direct")
	compareTrees(t, src, down)
}

// The remote shell's $0, and the rest of what a script sees, is what ssh gives.
func TestSSHModeLikeSSH(t *testing.T) {
	e := newSSHModeEnv(t)
	script := `echo "$0|$#|$SHELL|$(pwd)"`
	want := e.run("", nil, append(e.sshd.SSHArgs(), script)...)
	got := e.spSSH("", nil, script)
	if got.code != 0 || got.stdout != want.stdout {
		t.Fatalf("socketpipe --ssh printed %q (status %d, %s), ssh %q", got.stdout, got.code, got.stderr, want.stdout)
	}
	pt := e.spSSH("", []string{"--pass-through"}, script)
	if pt.stdout != want.stdout {
		t.Fatalf("--pass-through printed %q, ssh %q", pt.stdout, want.stdout)
	}
}

// -q: as ssh -q, nothing of socketpipe's own on standard error, not even its failures; the
// remote command's standard error still comes, and the status tells.
func TestSSHModeQuiet(t *testing.T) {
	e := newSSHModeEnv(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[%s]:%d %s\n", e.sshd.Host, e.sshd.Port, e.sshd.UserKeyPub)), 0o644)
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"refused", []string{"-o", "Port=1", e.sshd.Alias, "true"}, 255, ""},
		{"changed host key", []string{"-o", "UserKnownHostsFile=" + kh, e.sshd.Alias, "true"}, 255, ""},
		{"no such host", []string{"-o", "HostName=no-such-host.invalid", e.sshd.Alias, "true"}, 255, ""},
		{"remote stderr", []string{e.sshd.Alias, "echo to-stderr >&2; exit 3"}, 3, "to-stderr\n"},
		{"missing remote half", []string{e.sshd.Alias, "true"}, 255, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			own := []string{}
			if c.name == "missing remote half" {
				own = []string{"--no-deploy", "--remote-path", "/nonexistent/socketpipe"}
			}
			argv := append(append(append([]string{e.sp}, own...), "--ssh", "-q", "-F", e.sshd.ClientConfig), c.args...)
			r := e.run("", nil, argv...)
			if r.code != c.code || r.stderr != c.stderr {
				t.Errorf("socketpipe --ssh -q: status %d, stderr %q; want %d, %q", r.code, r.stderr, c.code, c.stderr)
			}
			if c.name == "missing remote half" {
				return
			}
			s := e.run("", nil, append([]string{"ssh", "-q", "-F", e.sshd.ClientConfig}, c.args...)...)
			if s.code != r.code || s.stderr != r.stderr {
				t.Errorf("ssh -q: status %d, stderr %q; socketpipe: %d, %q", s.code, s.stderr, r.code, r.stderr)
			}
			// Without -q the failure has its message.
			argv = append([]string{e.sp, "--ssh", "-F", e.sshd.ClientConfig}, c.args...)
			if r := e.run("", nil, argv...); c.code == 255 && !strings.Contains(r.stderr, "socketpipe: error: login failed: ") {
				t.Errorf("without -q: status %d, stderr %q", r.code, r.stderr)
			}
		})
	}
}

// A native login whose session ends before the remote half says so as a login, not as an
// ssh process that exited.
func TestSSHModeLoginFailedNative(t *testing.T) {
	e := newSSHModeEnv(t)
	r := e.spSSH("", []string{"--no-deploy", "--remote-path", "/bin/false"}, "true")
	if r.code != 255 || !strings.Contains(r.stderr, "socketpipe: error: login failed: the session ended with status 1 before the remote half started") ||
		strings.Contains(r.stderr, "ssh exited") {
		t.Fatalf("status %d, stderr %q", r.code, r.stderr)
	}
}

// keyPair makes an ed25519 key for authorized_keys lines of the test's own.
func keyPair(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	priv = filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	b, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, strings.TrimSpace(string(b))
}
