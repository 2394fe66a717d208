package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/socketpipe/socketpipe/pkg/deploy"
	"github.com/socketpipe/socketpipe/pkg/sshlogin"
)

// Run a helper program on a remote host that may not have it: from its PATH, from the cache
// of an earlier upload, or uploaded now over the same SSH connection. The program's output
// starts with hello, which ends the watch for the start command's report.
func ExampleDeployment() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const hello = "\x00helper-v1\x00"

	d := &deploy.Deployment{Name: "helper", Args: "--serve", Version: "1.0.0"}
	go d.Prepare() // finds the cache key while the login runs

	cmd := sshlogin.Command([]string{"ssh", "build@ci-runner-7"}, "helper --serve")
	cmd.NativeCommand = d.StartCommand
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer cmd.Close()
	w := d.Watch(out, hello)
	first := make([]byte, len(hello))
	if _, err := io.ReadFull(w, first); err == nil {
		fmt.Println("the helper runs")
		return
	}
	m := w.Missing()
	if m == nil || !cmd.Native() {
		log.Fatal("the helper did not start")
	}
	inst, err := d.Install(ctx, cmd)
	var pe *deploy.PlatformError
	if errors.As(err, &pe) {
		log.Fatalf("%v: build the helper for %s", err, m.Platform())
	} else if err != nil {
		log.Fatal(err)
	}
	log.Printf("uploaded %d bytes to %s in %v", inst.Size, inst.Path, inst.Took)
	helper, err := cmd.Session(d.RunCommand())
	if err != nil {
		log.Fatal(err)
	}
	helper.Stdout = os.Stdout
	if err := helper.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
