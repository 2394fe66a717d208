package socketpipe

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/deploy"
	"github.com/socketpipe/socketpipe/pkg/plumb"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// The errors of a run, in the words socketpipe reports them: what failed, and hints that say
// what to do.

// loginError is a login that did not start.
func (p *Pipe) loginError(err error) *Error {
	e := failure(p.failStatus(), err, "login failed: %v", err)
	var hk *sshlogin.HostKeyError
	if errors.As(err, &hk) {
		if h := hk.Hint(); h != "" {
			e.hint("%s", h)
		}
	}
	return e
}

// runError is a run that failed with err after the login started; loginErr is how the login
// ended, native whether it was an in-process SSH login.
func (p *Pipe) runError(err, loginErr error, native bool) *Error {
	if e := p.deployError(err, loginErr); e != nil {
		return e
	}
	status := p.failStatus()
	var be *wire.BannerError
	var ee *sshlogin.ExitError
	var fe *forcedError
	switch {
	case errors.As(err, &fe):
		return failure(status, err, "%v", fe).
			hint("sshd_config's ForceCommand or command= in authorized_keys replaces the command socketpipe asks for; socketpipe --ssh runs a command on such a login the way ssh does")
	case errors.As(err, &be):
		var e *Error
		name := loginName(p.Login)
		switch {
		case errors.Is(be.Err, wire.ErrBannerTooLong):
			e = failure(status, err, "the remote half did not start: the login printed more than %d bytes without its greeting", wire.MaxBanner).
				hint("is %s on the remote host really socketpipe? --remote-path names it", remoteName(p.RemotePath))
		case errors.As(loginErr, &ee) && ee.Status == 127:
			e = failure(status, err, "the remote half did not start: %s is not installed on the remote host (the remote shell said: command not found)", remoteName(p.RemotePath)).
				hint("install socketpipe on the remote host's PATH or name it with --remote-path; with a native ssh login (no -x) socketpipe copies itself there")
		case errors.As(loginErr, &ee) && ee.Status == 126:
			e = failure(status, err, "the remote half did not start: %s is not executable on the remote host", remoteName(p.RemotePath))
		case errors.As(loginErr, &ee) && native:
			e = failure(status, err, "login failed: the session ended with status %d before the remote half started", ee.Status)
		case errors.As(loginErr, &ee):
			e = failure(status, err, "login failed: %s exited with status %d before the remote half started", name, ee.Status)
		case loginErr != nil:
			e = failure(status, err, "login failed: %v", loginErr)
		default:
			e = failure(status, err, "%v", err).
				hint("the login command %s ended without starting the remote half", name)
		}
		if len(be.Banner) > 0 {
			e.hint("the login printed: %q", firstLine(be.Banner))
		}
		return e
	case errors.Is(err, rendezvous.ErrTimeout):
		return failure(status, err, "no data connection within %v", p.Timeout).
			hint("a firewall between the hosts may block it: -h names the address to connect back to, -m reverse or -m ssh choose another way, -t waits longer")
	case errors.As(err, new(*plumb.VersionError)):
		return failure(status, err, "%v", err).
			hint("install the same socketpipe version on both hosts, or name the remote one with --remote-path")
	case errors.As(err, new(*plumb.DataLostError)) && p.Mode != "ssh":
		return failure(status, err, "%v", err).
			hint("a firewall or NAT between the hosts may have forgotten the data connection while the login's stayed up: -m ssh carries the data over the login's connection")
	case errors.Is(err, plumb.ErrRemoteVanished):
		e := failure(status, err, "%v", err)
		if loginErr != nil {
			e.hint("the login ended with: %v", loginErr)
		}
		return e
	}
	return failure(status, err, "%v", err)
}

// deployError says what went wrong in deploying, if err is such a failure; otherwise nil.
func (p *Pipe) deployError(err, loginErr error) *Error {
	status := p.failStatus()
	var me *missingError
	var pe *deploy.PlatformError
	var nb *deploy.NoBuildError
	var bv *buildVersionError
	var ie *deploy.InstallError
	var ce *copyStartError
	switch {
	case errors.As(err, &me):
		e := failure(status, err, "%v", me)
		if me.path != "" {
			return e.hint("give the remote socketpipe's path, or drop --no-deploy to let socketpipe copy itself there")
		}
		return e.hint("install socketpipe on the remote host's PATH, name it with --remote-path, or drop --no-deploy to let socketpipe copy itself there")
	case errors.As(err, &bv):
		return failure(status, err, "%v", bv).
			hint("rebuild the builds in %s from this socketpipe's source (make build-all, make install), or name a directory of this version's builds with --deploy-dir", filepath.Dir(bv.path))
	case errors.As(err, &nb):
		return failure(status, err, "%v", nb).hint("%s", buildHint(nb))
	case errors.As(err, &pe):
		return failure(status, err, "%v", pe).
			hint("install socketpipe built for %s/%s on the remote host: on its PATH, or name it with --remote-path", pe.System, pe.Machine)
	case errors.As(err, &ie):
		msg := ie.Msg
		if msg == "" {
			msg = ie.Err.Error()
		}
		e := failure(status, err, "cannot deploy socketpipe into %s on the remote host: %s", ie.Dir, msg)
		if ie.Untrusted {
			return e.hint("socketpipe runs what it copies there only from directories no other user can change: make that directory and those above it writable by you alone, point XDG_CACHE_HOME elsewhere for the remote login, or install socketpipe on the remote host (--remote-path)")
		}
		return e.hint("socketpipe copies itself into that cache directory: make it writable with room for the binary, point XDG_CACHE_HOME elsewhere for the remote login, or install socketpipe on the remote host (--remote-path)")
	case errors.As(err, &ce):
		e := failure(status, err, "%v", ce)
		var ee *sshlogin.ExitError
		switch {
		case errors.As(loginErr, &ee) && ee.Status == 126:
			return e.hint("the remote cache directory may be on a noexec file system: set XDG_CACHE_HOME for the remote login, or install socketpipe there (--remote-path)")
		case ce.interp != "":
			return e.hint("this binary is dynamically linked (%s): build it with CGO_ENABLED=0 (make build does) to deploy it", ce.interp)
		default:
			return e.hint("install socketpipe on the remote host, or name it with --remote-path")
		}
	}
	return nil
}

// buildHint says how to make the build a remote host needs and where to put it.
func buildHint(nb *deploy.NoBuildError) string {
	cmd, name := deploy.BuildCommand(nb.Target, nb.Machine), "socketpipe-"+nb.Target.GOOS+"-"+nb.Target.GOARCH
	put := "put bin/" + name
	if cmd != "make build-all" {
		put = "copy bin/socketpipe to " + name
	}
	dir := "that directory"
	if nb.Path != "" {
		dir = filepath.Dir(nb.Path)
	}
	return fmt.Sprintf("build it with `%s` in socketpipe's source tree and %s in %s (make install puts the build-all set in PREFIX/lib/socketpipe), name a directory of builds with --deploy-dir, or install socketpipe on the remote host (--remote-path)", cmd, put, dir)
}

func loginName(login []string) string {
	if len(login) == 0 {
		return "login command"
	}
	return filepath.Base(login[0])
}

func remoteName(p string) string {
	if p == "" {
		return "socketpipe"
	}
	return p
}
