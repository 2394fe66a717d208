package plumb

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// loopback runs a Client against an in-process Server joined by pipes, as a login would join
// them, with SSH_CONNECTION saying both ends are on loopback.
func loopback(t *testing.T, c *Client) (*Report, error) {
	t.Helper()
	toServerR, toServerW, _ := os.Pipe()
	toClientR, toClientW, _ := os.Pipe()
	srv := &Server{Control: toServerR, Reply: toClientW, Stderr: os.Stderr,
		Getenv: func(k string) string {
			if k == "SSH_CONNECTION" {
				return "127.0.0.1 50000 127.0.0.1 22"
			}
			return os.Getenv(k)
		}}
	done := make(chan error, 1)
	go func() {
		err := srv.Run(context.Background())
		toClientW.Close()
		done <- err
	}()
	if c.LocalAddr == nil {
		c.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	if c.RemoteAddr == nil {
		// The login reached the address SSH_CONNECTION names: reverse mode dials it.
		c.RemoteAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := c.Run(ctx, toClientR, toServerW)
	toServerW.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not finish")
	}
	// Neither half closes what it reads the other from (a login's pipes are its caller's);
	// left to the garbage collector, they would make TestNoLeaks count what it happened to
	// have collected.
	toServerR.Close()
	toClientR.Close()
	return rep, err
}

func randomFile(t *testing.T, size int) (string, [32]byte) {
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, sha256.Sum256(b)
}

func TestLoopbackModes(t *testing.T) {
	in, sum := randomFile(t, 8<<20)
	for _, mode := range []string{"back", "reverse", "auto", "ssh"} {
		for _, enc := range []bool{false, true} {
			out := filepath.Join(t.TempDir(), "out")
			rep, err := loopback(t, &Client{
				Input:  []string{"cat", in},
				Remote: []string{"cat"},
				Output: []string{"sh", "-c", "cat > " + out},
				Mode:   mode, Encrypt: enc, Timeout: 20 * time.Second,
			})
			if err != nil {
				t.Fatalf("mode %s -e=%v: %v", mode, enc, err)
			}
			if st, s := rep.Status(); st != 0 {
				t.Fatalf("mode %s -e=%v: status %d (%v)", mode, enc, st, s)
			}
			got, _ := os.ReadFile(out)
			if sha256.Sum256(got) != sum {
				t.Fatalf("mode %s -e=%v: %d bytes arrived, not the %d sent", mode, enc, len(got), 8<<20)
			}
			if mode != "auto" && rep.Mode != mode {
				t.Errorf("mode %s: used %s", mode, rep.Mode)
			}
		}
	}
}

func TestLoopbackStdout(t *testing.T) {
	for _, mode := range []string{"back", "ssh"} {
		for _, enc := range []bool{false, true} {
			r, w, _ := os.Pipe()
			var got bytes.Buffer
			copied := make(chan struct{})
			go func() { io.Copy(&got, r); close(copied) }()
			rep, err := loopback(t, &Client{
				Remote: []string{"printf", "%s|", "a b", "$HOME", "*"},
				Stdout: w, Mode: mode, Encrypt: enc,
				Input: []string{"true"},
			})
			w.Close()
			<-copied
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := rep.Status(); st != 0 {
				t.Fatalf("status %d", st)
			}
			if got.String() != "a b|$HOME|*|" {
				t.Fatalf("mode %s -e=%v: got %q", mode, enc, got.String())
			}
		}
	}
}

func TestLoopbackStatuses(t *testing.T) {
	tests := []struct {
		name         string
		in, rem, out []string
		want         int
		stage        string
	}{
		{"input fails", []string{"sh", "-c", "exit 7"}, []string{"cat"}, []string{"cat"}, 7, StageInput},
		{"remote fails", []string{"true"}, []string{"sh", "-c", "cat; exit 3"}, []string{"cat"}, 3, StageRemote},
		{"output fails", []string{"true"}, []string{"cat"}, []string{"sh", "-c", "cat >/dev/null; exit 5"}, 5, StageOutput},
		{"rightmost wins", []string{"sh", "-c", "exit 7"}, []string{"sh", "-c", "cat; exit 3"}, []string{"cat"}, 3, StageRemote},
		{"remote not found", []string{"true"}, []string{"no-such-command-here"}, []string{"cat"}, 127, StageRemote},
		{"remote killed", []string{"true"}, []string{"sh", "-c", "kill -9 $$"}, []string{"cat"}, 137, StageRemote},
		{"output exits early", []string{"true"}, []string{"yes"}, []string{"head", "-c", "1"}, 141, StageRemote},
		{"remote leaves input unread", []string{"yes"}, []string{"head", "-c", "1"}, []string{"cat"}, 141, StageInput},
	}
	for _, mode := range []string{"back", "ssh"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				defer devnull.Close()
				rep, err := loopback(t, &Client{Input: tt.in, Remote: tt.rem, Output: tt.out, Mode: mode, Stdout: devnull})
				if err != nil {
					t.Fatal(err)
				}
				st, s := rep.Status()
				if st != tt.want || s == nil || s.Name != tt.stage {
					t.Fatalf("status %d from %v, want %d from %s", st, s, tt.want, tt.stage)
				}
			})
		}
	}
}
