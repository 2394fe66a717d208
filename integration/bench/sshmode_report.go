//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"os"
)

// SkipSSHModeEnv, set to 1, leaves the ssh mode's rsync and tar table out of `make bench`.
const SkipSSHModeEnv = "BENCH_SKIP_SSHMODE"

func init() {
	ExtraReports = append(ExtraReports, func(ctx context.Context, e *Env, size int64, runs int, w io.Writer) error {
		if os.Getenv(SkipSSHModeEnv) == "1" {
			return nil
		}
		fmt.Fprintf(w, "\nsocketpipe --ssh against ssh as the transport of rsync -a -W (one %s file) and tar (a %s tree):\n\n", Size(size), Size(max(size/4, 1<<20)))
		rows, err := BenchSSHMode(e.T, SSHModeOptions{FileSize: size, TreeSize: max(size/4, 1<<20), Runs: runs, Alt: e.Alt, Log: e.T.Out})
		if err != nil {
			return err
		}
		WriteSSHModeTable(w, rows)
		return nil
	})
}
