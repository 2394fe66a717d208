//go:build linux

package integration

// Issue 13: restricted keys and forced commands work through socketpipe --ssh as with ssh. An
// sshd ForceCommand or an authorized_keys command= (rrsync, borg serve --restrict-to-path,
// git-shell) replaces socketpipe's start command; socketpipe sees that, runs the user's command
// over the SSH session as ssh would (the forced command finds it in SSH_ORIGINAL_COMMAND), and
// remembers the login so that the next run asks for it at once.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socketpipe/socketpipe/internal/harness"
)

// forcedEnv is an sshd with forced commands: one key each with command= in authorized_keys,
// and one listen address each whose Match block has a ForceCommand. Every forced command
// counts its starts in a file of its own.
type forcedEnv struct {
	*clientEnv
	counts string            // directory of the start counts
	root   string            // what rrsync, borg serve and git-shell are restricted to
	cfgs   map[string]string // per forced command (tool/how): an ssh_config reaching it
}

// Listen addresses whose sessions run a ForceCommand, by tool.
var forceAddrs = map[string]string{"rrsync": "127.0.0.2", "borg": "127.0.0.3", "git": "127.0.0.4",
	"chatty": "127.0.0.5", "silent": "127.0.0.6"}

func rrsyncPath(t *testing.T) string {
	for _, p := range []string{"/usr/bin/rrsync", "/usr/share/doc/rsync/scripts/rrsync"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	requireFile(t, "/usr/bin/rrsync", "rsync")
	return ""
}

func newForcedEnv(t *testing.T) *forcedEnv {
	t.Helper()
	requireTool(t, "rsync")
	requireTool(t, "borg")
	requireTool(t, "git")
	requireTool(t, "git-shell")
	requireTool(t, "python3") // rrsync is a Python script
	rrsync := rrsyncPath(t)
	base := t.TempDir()
	os.Chmod(base, 0o755)
	counts := filepath.Join(base, "counts")
	root := filepath.Join(base, "root")
	os.MkdirAll(counts, 0o755)
	os.MkdirAll(root, 0o755)
	counted := filepath.Join(base, "counted")
	// counted NAME COMMAND...: note a start of the forced command NAME, then run it.
	os.WriteFile(counted, []byte(fmt.Sprintf("#!/bin/sh\nn=$1; shift\nprintf '%%s\\n' \"$SSH_ORIGINAL_COMMAND\" | tr -d '\\n' >> %s/$n\necho >> %s/$n\nexec \"$@\"\n", counts, counts)), 0o755)
	commands := map[string]string{
		"rrsync": fmt.Sprintf("%s rrsync-%%s %s %s", counted, rrsync, root),
		"borg":   fmt.Sprintf("%s borg-%%s borg serve --restrict-to-path %s", counted, root),
		"git":    fmt.Sprintf(`%s git-%%s git-shell -c "$SSH_ORIGINAL_COMMAND"`, counted),
		"chatty": fmt.Sprintf(`%s chatty-%%s sh -c 'echo this host takes backups only; read line; echo "got $line"'`, counted),
		"silent": fmt.Sprintf(`%s silent-%%s sh -c 'read line; echo "got $line"'`, counted),
	}
	keys := map[string]string{}
	var opts harness.SSHDOptions
	var addrs []string
	for _, tool := range []string{"rrsync", "borg", "git", "chatty", "silent"} {
		priv, pub := keyPair(t, base, tool+"-key")
		keys[tool] = priv
		cmd := fmt.Sprintf(commands[tool], "key")
		opts.AuthorizedKeys = append(opts.AuthorizedKeys,
			fmt.Sprintf("command=\"%s\",restrict %s", strings.ReplaceAll(cmd, `"`, `\"`), pub))
		addrs = append(addrs, forceAddrs[tool])
		opts.ExtraConfig = append(opts.ExtraConfig, "Match LocalAddress "+forceAddrs[tool],
			"ForceCommand "+fmt.Sprintf(commands[tool], "force"))
	}
	opts.ExtraListenAddrs = addrs
	e := &forcedEnv{clientEnv: newClientEnv(t, opts), counts: counts, root: root, cfgs: map[string]string{}}
	conf, err := os.ReadFile(e.sshd.ClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	for tool, key := range keys {
		c := strings.Replace(string(conf), "IdentityFile "+e.sshd.UserKey, "IdentityFile "+key, 1)
		e.cfgs[tool+"/command="] = e.writeConfig(t, tool+"-key", c)
		c = strings.Replace(string(conf), "HostName "+e.sshd.Host, "HostName "+forceAddrs[tool], 1)
		e.cfgs[tool+"/ForceCommand"] = e.writeConfig(t, tool+"-force", c)
	}
	return e
}

func (e *forcedEnv) writeConfig(t *testing.T, name, conf string) string {
	t.Helper()
	p := filepath.Join(e.work, name+".ssh_config")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// starts is how often the forced command has started.
func (e *forcedEnv) starts(name string) int {
	b, _ := os.ReadFile(filepath.Join(e.counts, name))
	return strings.Count(string(b), "\n")
}

// via reaches the forced command of tool/how through socketpipe --ssh.
func (e *forcedEnv) via(what string) via {
	return via{name: what, rsh: e.sp + " --ssh -F " + e.cfgs[what]}
}

func countName(what string) string {
	tool, how, _ := strings.Cut(what, "/")
	if how == "command=" {
		return tool + "-key"
	}
	return tool + "-force"
}

// forcedStory checks the -v story of a first run (the forced command recognised, the command
// passed through, the login remembered) or of a later one (straight to the pass-through).
func forcedStory(t *testing.T, stderr string, first bool) {
	t.Helper()
	if first {
		mustContain(t, "the first run's -v story", stderr, "pass-through: the server runs a forced command: ", "remembered ")
	} else {
		mustContain(t, "a later run's -v story", stderr, "remembers that ", " runs a forced command; the command runs over the SSH session")
		if strings.Contains(stderr, "the server runs a forced command: ") {
			t.Errorf("a remembered login was tried with the start command again:\n%s", stderr)
		}
	}
	// What the user reads, apart from socketpipe's -v story (which quotes it).
	var user []string
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "socketpipe: [") && !strings.HasPrefix(l, "Remote: socketpipe: [") {
			user = append(user, l)
		}
	}
	if u := strings.Join(user, "\n"); strings.Contains(u, "SSH_ORIGINAL_COMMAND does not run rsync") ||
		strings.Contains(u, "unrecognized command") || strings.Contains(u, "usage: borg") {
		t.Errorf("the forced command's complaint about socketpipe's request reached the user:\n%s", stderr)
	}
}

func TestForcedRrsync(t *testing.T) {
	e := newForcedEnv(t)
	src := filepath.Join(e.work, "src")
	makeTree(t, src)
	for _, what := range []string{"rrsync/command=", "rrsync/ForceCommand"} {
		t.Run(what, func(t *testing.T) {
			v := e.via(what)
			name := countName(what)
			sub := strings.ReplaceAll(name, "-", "")
			r := e.tool(t, v, nil, "rsync", "-a", "-e", v.rsh, src+"/", e.sshd.Alias+":"+sub+"/")
			forcedStory(t, r.stderr, true)
			served(t, r.stderr, "pass-through")
			compareTrees(t, src, filepath.Join(e.root, sub))
			if n := e.starts(name); n != 2 {
				t.Errorf("the forced command started %d times on the first run, want 2 (once more than with ssh)", n)
			}
			back := filepath.Join(e.work, sub+"-back")
			r = e.tool(t, v, nil, "rsync", "-a", "-e", v.rsh, e.sshd.Alias+":"+sub+"/", back+"/")
			forcedStory(t, r.stderr, false)
			served(t, r.stderr, "pass-through")
			compareTrees(t, src, back)
			if n := e.starts(name); n != 3 {
				t.Errorf("the forced command started %d times after the second run, want 3", n)
			}
			// rrsync still refuses what it refuses: the user's command, not socketpipe's.
			r = e.try(t, v, nil, "sh", "-c", v.rsh+" "+e.sshd.Alias+" ls /")
			if r.code == 0 || !strings.Contains(r.stderr, "SSH_ORIGINAL_COMMAND does not run rsync") {
				t.Errorf("rrsync on a command that is not rsync: status %d, stderr %q", r.code, r.stderr)
			}
		})
	}

	// Deleting the file forgets; --pass-through asks at once and remembers nothing.
	file := filepath.Join(e.cache, "socketpipe", "forced-commands")
	b, err := os.ReadFile(file)
	if err != nil || strings.Count(string(b), "\nroot 127.0.0.") != 2 {
		t.Fatalf("the forced-command logins: %v\n%s", err, b)
	}
	os.Remove(file)
	v := e.via("rrsync/command=")
	before := e.starts("rrsync-key")
	r := e.tool(t, v, nil, "rsync", "-a", "-e", v.rsh, src+"/", e.sshd.Alias+":again/")
	forcedStory(t, r.stderr, true)
	if n := e.starts("rrsync-key") - before; n != 2 {
		t.Errorf("after the file was deleted: %d starts, want 2", n)
	}
	os.Remove(file)
	before = e.starts("rrsync-key")
	r = e.tool(t, v, nil, "rsync", "-a", "-e", e.sp+" --pass-through --ssh -F "+e.cfgs["rrsync/command="], src+"/", e.sshd.Alias+":once/")
	mustContain(t, "--pass-through's -v story", r.stderr, "pass-through: asked for with --pass-through")
	if n := e.starts("rrsync-key") - before; n != 1 {
		t.Errorf("--pass-through: %d starts, want 1", n)
	}
	if _, err := os.Stat(file); err == nil {
		t.Errorf("--pass-through remembered the login")
	}
	compareTrees(t, src, filepath.Join(e.root, "once"))

	// Through the ssh link too.
	os.Remove(file)
	lv := via{name: "ssh link", rsh: "ssh -F " + e.cfgs["rrsync/command="], env: []string{"PATH=" + e.linkDir + ":/usr/bin:/bin"}}
	r = e.tool(t, lv, nil, "rsync", "-a", "-e", lv.rsh, src+"/", e.sshd.Alias+":linked/")
	forcedStory(t, r.stderr, true)
	compareTrees(t, src, filepath.Join(e.root, "linked"))
}

func TestForcedBorgServe(t *testing.T) {
	e := newForcedEnv(t)
	src := filepath.Join(e.work, "src")
	makeTree(t, src)
	for i, what := range []string{"borg/command=", "borg/ForceCommand"} {
		t.Run(what, func(t *testing.T) {
			v := e.via(what)
			repo := fmt.Sprintf("%s:%s/borg%d", e.sshd.Alias, e.root, i)
			borgRoundTrip(t, e.clientEnv, v, []string{"BORG_RSH=" + v.rsh}, repo, src, fmt.Sprintf("out%d", i), "pass-through")
			// init, create, list, extract: one start each and one more on the first.
			if n := e.starts(countName(what)); n != 5 {
				t.Errorf("borg serve started %d times, want 5", n)
			}
			// borg serve still keeps to its path.
			bad := fmt.Sprintf("%s:%s/outside%d", e.sshd.Alias, e.work, i)
			r := e.try(t, v, []string{"BORG_RSH=" + v.rsh, "BORG_PASSPHRASE=x", "BORG_BASE_DIR=" + filepath.Join(e.work, "bb")}, "borg", "init", "-e", "repokey", bad)
			if r.code == 0 {
				t.Errorf("borg serve --restrict-to-path let a repository outside its path be made:\n%s", r.stderr)
			}
		})
	}
}

func TestForcedGitShell(t *testing.T) {
	e := newForcedEnv(t)
	up := filepath.Join(e.work, "up")
	gitIn(t, e.work, "init", "-q", "-b", "main", up)
	commit(t, up, "one", 200_000)
	remote := filepath.Join(e.root, "repo.git")
	gitIn(t, e.work, "clone", "-q", "--bare", up, remote)
	for i, what := range []string{"git/command=", "git/ForceCommand"} {
		t.Run(what, func(t *testing.T) {
			v := e.via(what)
			env := []string{"GIT_SSH_COMMAND=" + v.rsh, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t",
				"GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org"}
			clone := filepath.Join(e.work, fmt.Sprintf("clone%d", i))
			r := e.tool(t, v, env, "git", "clone", "-q", e.sshd.Alias+":"+remote, clone)
			forcedStory(t, r.stderr, true)
			served(t, r.stderr, "pass-through")
			commit(t, clone, fmt.Sprintf("pushed%d", i), 100_000)
			r = e.tool(t, v, env, "git", "-C", clone, "push", "-q", "origin", "main")
			forcedStory(t, r.stderr, false)
			if a, b := gitIn(t, remote, "rev-parse", "main"), gitIn(t, clone, "rev-parse", "HEAD"); a != b {
				t.Fatalf("pushed %s, the remote has %s", b, a)
			}
			if n := e.starts(countName(what)); n != 3 {
				t.Errorf("git-shell started %d times, want 3", n)
			}
			// git-shell refuses a shell command, as with ssh.
			r = e.try(t, v, nil, "sh", "-c", v.rsh+" "+e.sshd.Alias+" id")
			if r.code == 0 || !strings.Contains(r.stderr, "unrecognized command 'id'") {
				t.Errorf("git-shell on id: status %d, stderr %q", r.code, r.stderr)
			}
		})
	}
}

// A forced command that prints and waits for its input, and one that says nothing: they are
// told from a login shell by time (forcedGrace, and -t for silence), then passed through.
func TestForcedChattyAndSilent(t *testing.T) {
	e := newForcedEnv(t)
	for _, c := range []struct {
		what, own, why string
	}{
		{"chatty/command=", "", "printed other output than the start command's, and not the start command's within 3s"},
		{"silent/ForceCommand", "-t 2", "printed nothing for 2s"},
	} {
		t.Run(c.what, func(t *testing.T) {
			argv := []string{e.sp}
			argv = append(argv, strings.Fields(c.own)...)
			argv = append(argv, "-v", "--ssh", "-F", e.cfgs[c.what], e.sshd.Alias, "any command")
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+e.cache)
			r := runCmd(t, cmd, "hello\n")
			want := "got hello\n"
			if strings.HasPrefix(c.what, "chatty") {
				want = "this host takes backups only\n" + want
			}
			if r.code != 0 || r.stdout != want {
				t.Fatalf("status %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
			}
			mustContain(t, "-v", r.stderr, c.why, "remembered ")
			if n := e.starts(countName(c.what)); n != 2 {
				t.Errorf("%d starts, want 2", n)
			}
		})
	}
}

// The brace mode has no command of the user's to pass through: a forced command is an error
// that says so.
func TestForcedBraceMode(t *testing.T) {
	e := newForcedEnv(t)
	cmd := exec.Command(e.sp, "-l", "{", "ssh", "-F", e.cfgs["git/command="], e.sshd.Alias, "}", "-r", "{", "true", "}", "-o", "{", "cat", "}")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+e.cache)
	r := runCmd(t, cmd, "")
	if r.code != 2 || !strings.Contains(r.stderr, "socketpipe: error: the remote half did not start: the server runs a forced command for this login") ||
		!strings.Contains(r.stderr, "socketpipe: hint: ") {
		t.Fatalf("status %d, stderr:\n%s", r.code, r.stderr)
	}
}
