package socketpipe_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/socketpipe/socketpipe"
)

// Back up /home to the tape drive of a remote host: tar's standard output is the data
// socket, and so is the remote dd's standard input. The login is native SSH with the user's
// ssh_config, agent and known_hosts; the remote host needs socketpipe or gets a copy of this
// program.
func Example() {
	p := &socketpipe.Pipe{
		Login:  []string{"ssh", "backup@nas"},
		Input:  []string{"tar", "cf", "-", "/home"},
		Remote: []string{"dd", "of=/dev/nst0", "bs=64k"},
		Stderr: os.Stderr,
	}
	stats, err := p.Run(context.Background())
	var e *socketpipe.Error
	if errors.As(err, &e) {
		fmt.Fprintln(os.Stderr, "backup failed:", e)
		for _, h := range e.Hints {
			fmt.Fprintln(os.Stderr, "hint:", h)
		}
		os.Exit(e.Status)
	}
	fmt.Printf("%d bytes to nas in %.1fs over %s\n", stats.Bytes.ToRemote, stats.Seconds.Total, stats.Mode)
}

// Stream this program's standard input to a remote command, as ssh mode does for rsync or
// tar: the remote user's shell runs the command line, and the exit status is the remote
// command's.
func Example_sshMode() {
	p := &socketpipe.Pipe{
		Login:         []string{"ssh", "backup@nas"},
		Remote:        []string{"zstd -q -o /srv/backup/today.zst"},
		SSHMode:       true,
		StdinToRemote: true,
		Stdin:         os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
	if _, err := p.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(err.(*socketpipe.Error).Status)
	}
}
