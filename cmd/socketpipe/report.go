package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/socketpipe/socketpipe"
	"github.com/socketpipe/socketpipe/internal/quote"
)

// The voice of socketpipe on standard error: every failure reaches here as a value and is
// printed once, as "socketpipe: error: " and the message, then a "socketpipe: hint: " line
// for each hint. Each line is made printable here too (quote.Printable, which leaves text
// already made printable as it is): a message may carry words of the remote host's that no
// layer below cleaned, such as a server's reason inside an SSH library's error.

// maxLine bounds one printed line; a message that long is an attack, not a report.
const maxLine = 64 << 10

// report prints e and returns the status socketpipe exits with: 0 for nil.
func report(w io.Writer, e *socketpipe.Error) int {
	if e == nil {
		return 0
	}
	printError(w, e)
	return e.Status
}

func printError(w io.Writer, e *socketpipe.Error) {
	var said *sshVoice
	switch {
	case e.Silent:
	case errors.As(e.Err, &said):
		fmt.Fprintf(w, "ssh: %s\n", quote.Printable(e.Msg, maxLine))
	default:
		fmt.Fprintf(w, "socketpipe: error: %s\n", quote.Printable(e.Error(), maxLine))
		for _, h := range e.Hints {
			fmt.Fprintf(w, "socketpipe: hint: %s\n", quote.Printable(h, maxLine))
		}
	}
}

// sshVoice is an error that socketpipe, run under the name ssh, says as ssh would: "ssh: "
// and the message, no hints.
type sshVoice struct{ err error }

func (e *sshVoice) Error() string { return e.err.Error() }
func (e *sshVoice) Unwrap() error { return e.err }
