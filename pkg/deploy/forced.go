package deploy

import (
	"context"
	"fmt"
	"time"
)

// A server may run another command than the one a session asks for: sshd's ForceCommand, or
// command="..." on the key's line in authorized_keys (rrsync, borg serve --restrict-to-path,
// git-shell, gitolite). The asked-for command then reaches it only as SSH_ORIGINAL_COMMAND.
// A program that starts its own remote half on such a login (a Deployment's start command)
// never runs; the client can still run the user's own command line as ssh would and let the
// forced command judge it. ForcedCommand tells such a login from a slow or chatty login
// shell, and sshlogin.ForcedLogins remembers it, so that the next run asks for the user's
// command at once.

// ForcedCommand waits until it can tell whether the session runs the start command. It returns
// "" once the start marker or the program's first bytes came, and otherwise why the server
// seems to run another command than the one asked for: the session's output ended first; it
// printed output and then not the start marker within grace; or it printed nothing at all for
// silence (0: no limit). A login shell's banner is followed by the start marker, a forced
// command's output is not. When ctx ends it returns what it can tell at that moment: "" unless
// the output has already ended without the start marker. Something must be reading w.
func (w *Watcher) ForcedCommand(ctx context.Context, grace, silence time.Duration) string {
	ended := func() string {
		select {
		case <-w.Started():
			return ""
		default:
		}
		select {
		case <-w.Stray():
			return "the session printed other output than the start command's and ended"
		default:
			return "the session ended without output before the start command ran"
		}
	}
	var silenceC, graceC <-chan time.Time
	if silence > 0 {
		t := time.NewTimer(silence)
		defer t.Stop()
		silenceC = t.C
	}
	stray := w.Stray()
	for {
		select {
		case <-w.Started():
			return ""
		case <-w.Ended():
			return ended()
		case <-ctx.Done():
			select {
			case <-w.Ended():
				return ended()
			default:
				return ""
			}
		case <-stray:
			stray = nil
			t := time.NewTimer(grace)
			defer t.Stop()
			graceC = t.C
		case <-graceC:
			return fmt.Sprintf("the session printed other output than the start command's, and not the start command's within %v", grace)
		case <-silenceC:
			return fmt.Sprintf("the session printed nothing for %v, not even the start command's first line", silence)
		}
	}
}
