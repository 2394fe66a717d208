package main

import (
	"fmt"
	"io"

	buildversion "github.com/socketpipe/socketpipe/internal/version"
)

const usageText = `usage: socketpipe [-bevx] [-h host] [-t timeout] [-m mode] [--ports low-high]
                  [--remote-path path] [--no-deploy] [--deploy-dir dir]
                  [--cipher name] [--streams n] [--stats file]
                  [-i { input command ... }] -l { login command ... }
                  -r { remote command ... } [-o { output command ... }]
       socketpipe [options] [--pass-through] --ssh [ssh options] host command [argument ...]
       socketpipe --help | --version

Runs the remote command on the host reached by the login command and connects it over a
direct TCP socket to the local input command (-i) and/or output command (-o). Braces are
separate words and may nest. Without -o the remote output goes to standard output.

  -l { ssh [options] host }  log in natively (no ssh binary needed); any other login
                             command, or -x, is executed as given
  -r { command ... }         the remote command, run verbatim (no remote shell)
  -i { command ... }         its output is the remote command's input
  -o { command ... }         the remote command's output is its input
  -b                         batch mode: never prompt (keys or agent only)
  -h host                    the address the remote host connects back to
  -t seconds                 wait this long for the data connection (default 30, 0 forever)
  -m auto|back|reverse|ssh   how the data connection is made (default auto)
  --ports low-high           listen only on ports in this range
  -e                         encrypt and authenticate the data connection
  --cipher name              -e cipher: aes-256-gcm or chacha20-poly1305 (default: by CPU)
  --streams n                stripe the data over n TCP connections, 1-64 (default: one,
                             zero-copy, unless the round trip needs more to fill the path;
                             -v says what it chose and why)
  -x                         execute the login command even when it is ssh
  -v                         tell what happens, on standard error, with the progress
  --stats file               write a JSON summary of the run to file (- for standard error)
  --remote-path path         the socketpipe binary on the remote host (default socketpipe)
  --no-deploy                never copy socketpipe to a remote host that lacks it (native
                             ssh login copies it into ~/.cache/socketpipe there by default)
  --deploy-dir dir           the builds to copy to hosts of other systems and architectures,
                             socketpipe-<goos>-<goarch> (default ../lib/socketpipe beside
                             this executable, where make install puts them)
  --pass-through             with --ssh: run the command over the SSH session as ssh does,
                             without the remote half (for a key with a forced command)

Exit status: the rightmost failed stage's status (as a shell's pipefail), 2 when socketpipe
itself fails, 1 for a command-line mistake. See socketpipe(1).
`

func usage(w io.Writer) { io.WriteString(w, usageText) }

func version(w io.Writer) {
	fmt.Fprintf(w, "socketpipe %s (protocol %d)\n", buildversion.String(), protocolVersion)
}
