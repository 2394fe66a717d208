package main

import (
	"os"
	"time"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// livenessEnv is for tests only: when it is "short" in the environment of a half, that half
// finds a dead link in about 6 s (keepalive after 2 s idle, pings every second) instead of
// 30 s, so that a test of a cut link ends in seconds.
const livenessEnv = "SOCKETPIPE_TEST_LIVENESS"

// liveness returns the liveness settings this half runs with: rendezvous's defaults (the zero
// value) unless livenessEnv asks for short ones.
func liveness() rendezvous.Liveness {
	if os.Getenv(livenessEnv) == "short" {
		return rendezvous.Liveness{KeepIdle: 2 * time.Second, KeepInterval: time.Second, KeepCount: 3, PingInterval: time.Second}
	}
	return rendezvous.Liveness{}
}
