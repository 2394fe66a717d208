package socketpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	buildversion "github.com/socketpipe/socketpipe/internal/version"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/deploy"
	"github.com/socketpipe/socketpipe/pkg/plumb"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// deployer starts the remote half of a native login. One session command runs socketpipe
// from the remote PATH (or --remote-path) or from the cache of copies this binary deployed
// before, so that an installed or cached remote half costs no round trip more than the login.
// When there is neither, or the remote socketpipe speaks another protocol, the same SSH
// connection carries an upload of this binary and then starts the copy.
type deployer struct {
	p     *Pipe
	dep   *deploy.Deployment
	watch *deploy.Watcher
}

func newDeployer(p *Pipe) *deployer {
	d := &deployer{p: p, dep: &deploy.Deployment{
		Name: "socketpipe", Args: "--serve", Path: p.RemotePath, Version: buildversion.String(),
		NoCache: p.NoDeploy,
	}}
	if !p.NoDeploy && !p.ForceExec && len(p.Login) > 0 && sshlogin.IsSSH(p.Login[0]) {
		// The start command names the cache by this binary's key: find it during the login.
		go func() {
			t0 := time.Now()
			if d.dep.Prepare() == nil {
				key, from := d.dep.Key()
				d.log("this binary's cache key: %s, from %s in %v", key, from, time.Since(t0).Round(time.Microsecond))
			}
		}()
	}
	return d
}

func (d *deployer) log(format string, args ...any) { d.p.log(format, args...) }

// startCommand is the login's NativeCommand.
func (d *deployer) startCommand() (string, error) { return d.dep.StartCommand() }

// reader watches the login session's output for the start command's report of a missing
// remote half.
func (d *deployer) reader(r io.Reader) io.Reader {
	d.watch = d.dep.Watch(r, wire.Magic)
	return d.watch
}

// A missingError is a native login's remote host without a socketpipe to run, when socketpipe
// does not deploy itself (--no-deploy).
type missingError struct {
	path string // --remote-path
	m    *deploy.Missing
}

func (e *missingError) Error() string {
	if e.path != "" {
		return fmt.Sprintf("the remote half did not start: %s is not installed on the remote host", e.path)
	}
	return fmt.Sprintf("the remote half did not start: socketpipe is not installed on the remote host (its PATH is %s)", e.m.PATH)
}

// A copyStartError is a deployed copy that did not start.
type copyStartError struct {
	path   string
	interp string // the binary's dynamic loader, if it has one
	err    error
}

func (e *copyStartError) Error() string {
	return fmt.Sprintf("the copy of socketpipe deployed to %s did not start", e.path)
}

func (e *copyStartError) Unwrap() error { return e.err }

// recover is called when the first attempt at the remote half failed with err on a native
// login. If the start command reported socketpipe missing, or the remote one speaks another
// protocol, it uploads this binary over the same connection and runs the plumbing again with
// the copy. It returns the session the remote half runs in and its standard input.
func (d *deployer) recover(ctx context.Context, login *sshlogin.Cmd, w io.WriteCloser, c *plumb.Client, err error) (*plumb.Report, *sshlogin.Cmd, io.WriteCloser, error) {
	rep := &plumb.Report{}
	if ctx.Err() != nil || d.watch == nil {
		return rep, login, w, err
	}
	var ve *plumb.VersionError
	m := d.watch.Drain(2 * time.Second)
	switch {
	case m != nil && d.p.NoDeploy:
		return rep, login, w, &missingError{path: d.p.RemotePath, m: m}
	case m != nil:
		what := "socketpipe is not on its PATH"
		if d.p.RemotePath != "" {
			what = "--remote-path " + d.p.RemotePath + " names nothing there"
		}
		if !d.dep.Serves(m.System, m.Machine) {
			// The start command looked for this binary's copy; the host needs another build.
			if err := d.forTarget(m.System, m.Machine); err != nil {
				return rep, login, w, err
			}
			w.Close()
			d.log("the remote host (%s) has no socketpipe to run: %s; trying the cache for %s", m.Platform(), what, d.what())
			if rep, half, hw, missing, err := d.startCached(ctx, login, c); missing == nil {
				return rep, half, hw, err
			}
		}
		d.log("the remote host (%s) has no socketpipe to run: %s; deploying %s", m.Platform(), what, d.what())
	case errors.As(err, &ve) && !d.p.NoDeploy:
		// The first session has ended or will once its input ends; the connection stays.
		w.Close()
		if d.p.RemotePath != "" {
			// The start command tried --remote-path before the cache: try the cache now
			// rather than upload again on every run.
			rep, half, hw, missing, err := d.startCached(ctx, login, c)
			if missing == nil {
				if err == nil {
					d.log("%v; ran the cached copy of %s instead", ve, d.what())
				}
				return rep, half, hw, err
			}
		}
		d.log("%v; deploying %s", ve, d.what())
	default:
		return rep, login, w, err
	}
	w.Close()

	inst, ierr := d.dep.Install(ctx, login)
	var pe *deploy.PlatformError
	if errors.As(ierr, &pe) && d.dep.Binary == "" {
		// The remote socketpipe of another version runs on a host of another target.
		if err := d.forTarget(pe.System, pe.Machine); err != nil {
			return rep, login, w, err
		}
		d.log("the remote host is %s/%s: deploying %s", pe.System, pe.Machine, d.what())
		inst, ierr = d.dep.Install(ctx, login)
	}
	if ierr != nil {
		return rep, login, w, ierr
	}
	d.log("uploaded socketpipe (%s) to %s in %v", size(inst.Size), inst.Path, inst.Took.Round(time.Millisecond))
	// Go links every OpenBSD and macOS binary with the system's C library; on Linux a static
	// build runs on any distribution.
	if ip := d.dep.Interpreter(); ip != "" && d.dep.Target().GOOS == "linux" {
		d.log("note: this binary is dynamically linked (%s); a static build (CGO_ENABLED=0, as make build does) runs on more hosts", ip)
	}
	rep, half, hw, _, err := d.start(ctx, login, c, d.dep.RunCommand())
	if errors.As(err, new(*wire.BannerError)) {
		ce := &copyStartError{path: inst.Path, err: err}
		if d.dep.Target().GOOS == "linux" {
			ce.interp = d.dep.Interpreter()
		}
		err = ce
	}
	return rep, half, hw, err
}

// forTarget makes the deployment that of the build for a host of another target, from
// --deploy-dir or the default directory of cross-built binaries.
func (d *deployer) forTarget(system, machine string) error {
	dep, err := d.dep.For(system, machine, d.p.DeployDir)
	if err != nil {
		return err
	}
	d.dep = dep
	return nil
}

// what names the binary being deployed, for the log.
func (d *deployer) what() string {
	if d.dep.Binary == "" {
		return "this binary"
	}
	return fmt.Sprintf("the %s build %s", d.dep.Target(), d.dep.Binary)
}

// startCached runs the plumbing again with the remote half started from the cache only.
func (d *deployer) startCached(ctx context.Context, login *sshlogin.Cmd, c *plumb.Client) (*plumb.Report, *sshlogin.Cmd, io.WriteCloser, *deploy.Missing, error) {
	cmd, err := d.dep.CacheCommand()
	if err != nil {
		return &plumb.Report{}, login, nil, nil, err
	}
	return d.start(ctx, login, c, cmd)
}

// start runs the plumbing again with the remote half started by command on a new session of
// the login's connection. missing is what the command printed if it found nothing to run.
func (d *deployer) start(ctx context.Context, login *sshlogin.Cmd, c *plumb.Client, command string) (rep *plumb.Report, half *sshlogin.Cmd, hw io.WriteCloser, missing *deploy.Missing, err error) {
	rep = &plumb.Report{}
	if half, err = login.Session(command); err != nil {
		return rep, login, nil, nil, err
	}
	half.Stderr = d.p.Stderr
	if hw, err = half.StdinPipe(); err != nil {
		return rep, login, nil, nil, err
	}
	hr, err := half.StdoutPipe()
	if err != nil {
		return rep, login, hw, nil, err
	}
	if err := half.Start(ctx); err != nil {
		return rep, login, hw, nil, err
	}
	watch := d.dep.Watch(hr, wire.Magic)
	rep, err = c.Run(ctx, watch, hw)
	if err != nil && ctx.Err() == nil {
		missing = watch.Drain(2 * time.Second)
	}
	if d.dep.Binary != "" && errors.As(err, new(*plumb.VersionError)) {
		err = &buildVersionError{path: d.dep.Binary, err: err}
	}
	return rep, half, hw, missing, err
}

// A buildVersionError is a build for another target, from the directory of builds, that
// speaks another protocol than this binary: a directory left from an older installation.
type buildVersionError struct {
	path string
	err  error
}

func (e *buildVersionError) Error() string {
	return fmt.Sprintf("the build deployed from %s is of another version: %v", e.path, e.err)
}

func (e *buildVersionError) Unwrap() error { return e.err }
