//go:build !linux || portable

package plumb

// Systems without splice(2) (the BSDs, macOS, and Linux built with the portable tag): Copy
// always reads and writes through a buffer.

import "sync/atomic"

func splice(out, in *end, n *atomic.Int64) (int64, bool, error) { return 0, false, nil }
