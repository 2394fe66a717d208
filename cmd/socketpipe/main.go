// Command socketpipe connects a remote command, started through a login command such as ssh,
// to local commands over a direct TCP socket. See socketpipe(1).
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
}
