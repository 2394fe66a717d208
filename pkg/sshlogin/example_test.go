package sshlogin_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// Run a remote command through the user's ssh settings and read its output line by line.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := sshlogin.Command([]string{"ssh", "-p", "2222", "backup@db1.example.org"}, "uname -a")
	cmd.Stderr = os.Stderr
	cmd.BatchMode = true // a script: never prompt
	cmd.Logf = log.Printf
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(ctx); err != nil {
		var hk *sshlogin.HostKeyError
		var auth *sshlogin.AuthError
		switch {
		case errors.As(err, &hk):
			log.Fatalf("%v\nhint: %s", err, hk.Hint())
		case errors.As(err, &auth):
			log.Fatalf("%v\nhint: %s", err, auth.Hint())
		}
		log.Fatal(err)
	}
	if cmd.Native() {
		log.Printf("logged in in-process from %v to %v", cmd.LocalAddr(), cmd.RemoteAddr())
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fmt.Println(sc.Text())
	}
	var exit *sshlogin.ExitError
	if err := cmd.Wait(); errors.As(err, &exit) {
		log.Fatalf("remote status %d %s", exit.Status, exit.Signal)
	} else if err != nil {
		log.Fatal(err)
	}
}
