package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/socketpipe/socketpipe"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/plumb"
)

const protocolVersion = wire.Protocol

// Exit statuses of socketpipe's own.
const (
	exitUsage   = socketpipe.ExitUsage
	exitFailure = socketpipe.ExitFailure
)

// run is socketpipe without the process around it: args includes the program name. Every
// failure below it is returned as a *socketpipe.Error and printed here, once.
func run(ctx context.Context, args []string, stdin, stdout, stderr *os.File) int {
	// A write to a closed pipe must be an error we handle, not our death; commands we start
	// still get SIGPIPE by default (a caught signal is reset on exec, an ignored one is not).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	ctx, sig, stop := withSignals(ctx)
	defer stop()

	switch {
	case len(args) > 1 && args[1] == "--serve":
		return serve(ctx, args[2:], stdin, stdout, stderr, sig)
	case invokedAsSSH(args[0]):
		return runSSH(ctx, nil, args[1:], true, stdin, stdout, stderr, sig)
	}
	if i := sshFlag(args[1:]); i >= 0 {
		return runSSH(ctx, args[1:1+i], args[2+i:], false, stdin, stdout, stderr, sig)
	}
	a, err := plumb.ParseArgs(args[1:])
	if err != nil {
		return report(stderr, usageError(err, "%v", err))
	}
	switch {
	case a.Help:
		usage(stdout)
		return 0
	case a.Version:
		version(stdout)
		return 0
	case a.PassThrough:
		return report(stderr, usageError(nil, "--pass-through is for ssh mode: socketpipe --pass-through --ssh host command"))
	}
	u := newUI(a, stderr, false, exitFailure)
	p := newPipe(a, stdin, stdout, stderr, u)
	st, err := p.Run(ctx)
	return u.finish(st, err, sig())
}

// newPipe is the run the options a ask for, its story told through u.
func newPipe(a *plumb.Args, stdin, stdout, stderr *os.File, u *ui) *socketpipe.Pipe {
	return &socketpipe.Pipe{
		Login: a.Login, Remote: a.Remote, Input: a.Input, Output: a.Output,
		RemotePath: a.RemotePath, NoDeploy: a.NoDeploy, DeployDir: a.DeployDir, ForceExec: a.ForceExec, Batch: a.Batch,
		Mode: a.Mode, Host: a.Host, Timeout: a.Timeout, Ports: a.Ports,
		Encrypt: a.Encrypt, Cipher: a.Cipher, Streams: a.Streams, Liveness: liveness(),
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Logf: u.logf, Watch: u.watch(),
	}
}

// usageError is a command-line mistake: status 1, and where to read about it.
func usageError(cause error, format string, args ...any) *socketpipe.Error {
	return &socketpipe.Error{Msg: fmt.Sprintf(format, args...), Status: exitUsage, Err: cause,
		Hints: []string{"see socketpipe --help"}}
}

// withSignals returns a context cancelled by SIGINT, SIGTERM or SIGHUP, and a function that
// reports which signal it was (0 if none).
func withSignals(parent context.Context) (context.Context, func() syscall.Signal, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var mu sync.Mutex
	var got syscall.Signal
	go func() {
		select {
		case s := <-ch:
			mu.Lock()
			got = s.(syscall.Signal)
			mu.Unlock()
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() syscall.Signal {
			mu.Lock()
			defer mu.Unlock()
			return got
		}, func() {
			signal.Stop(ch)
			cancel()
		}
}

// serve is the remote half.
func serve(ctx context.Context, args []string, stdin, stdout, stderr *os.File, sig func() syscall.Signal) int {
	if len(args) > 0 {
		return report(stderr, &socketpipe.Error{Msg: "--serve takes no arguments", Status: exitUsage})
	}
	s := &plumb.Server{Control: stdin, Reply: stdout, Stderr: stderr, Liveness: liveness()}
	if err := s.Run(ctx); err != nil {
		if s := sig(); s != 0 {
			return 128 + int(s)
		}
		// An error the client was told of is the client's to print.
		e := &socketpipe.Error{Msg: "remote half: " + err.Error(), Status: exitFailure, Err: err,
			Silent: errors.As(err, new(*plumb.ReportedError))}
		return report(stderr, e)
	}
	return 0
}
