package sshlogin

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A server may run another command than the one a session asks for: sshd's ForceCommand, or
// command="..." on the key's line in authorized_keys (rrsync, borg serve --restrict-to-path,
// git-shell, gitolite). The asked-for command then reaches it only as SSH_ORIGINAL_COMMAND.
// ForcedLogins remembers such a login (package deploy's Watcher.ForcedCommand tells one from
// a slow or chatty login shell), so that the next run asks for the user's command at once.

// ForcedLogins is a file of logins known to run a forced command, one a line:
//
//	# comments and blank lines are ignored
//	user host port host-key user-key first-seen
//	backup nas.example.org 22 SHA256:n4bQgYhM...DwCgg SHA256:Yq3m...k2U 2026-12-01T10:00:00Z
//
// host is the HostName the login connected to; user and host are URL-path-escaped where they
// hold spaces or other unsafe bytes. host-key is the server's host key's SHA-256 fingerprint,
// as ssh prints it, so that another server behind the same name is not taken for the same
// login; user-key is that of the key the user was accepted with ("-" for another method),
// since authorized_keys forces a command on one key and not on another key of the same
// account. Deleting a line, or the file, forgets. Lines are appended whole with O_APPEND, so
// concurrent runs can share the file.
type ForcedLogins struct {
	Path string
}

// ForcedLogin is one line of a ForcedLogins file.
type ForcedLogin struct {
	User, Host  string
	Port        int
	Fingerprint string // the host key's
	UserKey     string // the user key's fingerprint; "" for another method
	Since       time.Time
}

// DefaultForcedLogins is the file in the user's cache directory
// (os.UserCacheDir()/socketpipe/forced-commands: ${XDG_CACHE_HOME:-~/.cache} on Linux and
// the BSDs, ~/Library/Caches on macOS); nil when there is no cache directory.
func DefaultForcedLogins() *ForcedLogins {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil
	}
	return &ForcedLogins{Path: filepath.Join(dir, "socketpipe", "forced-commands")}
}

// maxForcedFile bounds how much of the file is read: a file grown by accident or malice
// must not cost a run more than a moment.
const maxForcedFile = 1 << 20

// Has reports whether the file lists ep. A missing file lists nothing.
func (f *ForcedLogins) Has(ep *Endpoint) (bool, error) {
	if f == nil || ep == nil || ep.Fingerprint() == "" {
		return false, nil
	}
	file, err := os.Open(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer file.Close()
	for _, l := range ParseForcedLogins(io.LimitReader(file, maxForcedFile)) {
		if l.matches(ep) {
			return true, nil
		}
	}
	return false, nil
}

func (l *ForcedLogin) matches(ep *Endpoint) bool {
	return l.User == ep.User && l.Host == ep.HostName && l.Port == ep.Port && l.Fingerprint == ep.Fingerprint() &&
		l.UserKey == ep.UserKeyFingerprint()
}

// Add appends ep to the file, creating it and its directory (mode 0700) as needed; it does
// nothing if ep is listed already.
func (f *ForcedLogins) Add(ep *Endpoint, now time.Time) error {
	if f == nil || ep == nil || ep.Fingerprint() == "" {
		return nil
	}
	if ok, err := f.Has(ep); ok || err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return err
	}
	file, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if fi, err := file.Stat(); err == nil && fi.Size() == 0 {
		b.WriteString(forcedHeader)
	}
	l := ForcedLogin{User: ep.User, Host: ep.HostName, Port: ep.Port, Fingerprint: ep.Fingerprint(),
		UserKey: ep.UserKeyFingerprint(), Since: now}
	b.WriteString(l.String() + "\n")
	_, err = file.Write(b.Bytes()) // one write: appended whole
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return err
}

const forcedHeader = `# socketpipe: logins whose server runs a forced command (sshd ForceCommand, or command= in
# authorized_keys). socketpipe --ssh runs the command over the SSH session for them, as ssh
# does, instead of starting its remote half. Delete a line, or this file, to forget one.
# user host port host-key user-key first-seen
`

// String is the login's line in the file, without the newline.
func (l *ForcedLogin) String() string {
	uk := l.UserKey
	if uk == "" {
		uk = "-"
	}
	return strings.Join([]string{url.PathEscape(l.User), url.PathEscape(l.Host), strconv.Itoa(l.Port),
		l.Fingerprint, uk, l.Since.UTC().Format(time.RFC3339)}, " ")
}

// ParseForcedLogins reads the lines of a ForcedLogins file, skipping comments and any line
// it cannot read whole (a line cut short by a full disk, an edit gone wrong).
func ParseForcedLogins(r io.Reader) []ForcedLogin {
	var out []ForcedLogin
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if l, ok := parseForcedLine(line); ok {
			out = append(out, l)
		}
	}
	return out
}

func parseForcedLine(line string) (ForcedLogin, bool) {
	f := strings.Fields(line)
	if len(f) != 6 {
		return ForcedLogin{}, false
	}
	user, err1 := url.PathUnescape(f[0])
	host, err2 := url.PathUnescape(f[1])
	port, err3 := strconv.Atoi(f[2])
	since, err4 := time.Parse(time.RFC3339, f[5])
	uk := f[4]
	if uk == "-" {
		uk = ""
	} else if !strings.HasPrefix(uk, "SHA256:") {
		return ForcedLogin{}, false
	}
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || host == "" || port <= 0 || port > 65535 ||
		!strings.HasPrefix(f[3], "SHA256:") || since.UTC().Year() < 1 || since.UTC().Year() > 9999 {
		return ForcedLogin{}, false
	}
	return ForcedLogin{User: user, Host: host, Port: port, Fingerprint: f[3], UserKey: uk, Since: since}, true
}
