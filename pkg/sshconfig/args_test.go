package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want Invocation
	}{
		{[]string{"host"}, Invocation{Host: "host"}},
		{[]string{"user@host", "ls", "-l"}, Invocation{Host: "host", User: "user", Command: []string{"ls", "-l"}}},
		{[]string{"a@b@host"}, Invocation{Host: "host", User: "a@b"}},
		{[]string{"-p", "2222", "-l", "bob", "h"}, Invocation{Host: "h", User: "bob", Port: 2222}},
		{[]string{"-p2222", "-lbob", "h"}, Invocation{Host: "h", User: "bob", Port: 2222}},
		{[]string{"-p", "1", "-p", "2", "h"}, Invocation{Host: "h", Port: 1}},
		{[]string{"-l", "a", "b@h"}, Invocation{Host: "h", User: "a"}},
		{[]string{"b@h", "-l", "a"}, Invocation{Host: "h", User: "b"}},
		// -o Port before -p: ssh keeps the -o value, so -p is dropped.
		{[]string{"-o", "Port=9", "-p", "7", "h"}, Invocation{Host: "h", Options: [][2]string{{"port", "9"}}}},
		{[]string{"-p", "7", "-o", "Port=9", "h"}, Invocation{Host: "h", Port: 7, Options: [][2]string{{"port", "9"}}}},
		{[]string{"-o", "User x", "-l", "y", "z@h"}, Invocation{Host: "h", Options: [][2]string{{"user", "x"}}}},
		{[]string{"-oUSER = x", "h"}, Invocation{Host: "h", Options: [][2]string{{"user", "x"}}}},
		{[]string{"-o", "IdentityFile \"/a b\"", "h"}, Invocation{Host: "h", Options: [][2]string{{"identityfile", "\"/a b\""}}}},
		{[]string{"ssh://u@h:2200"}, Invocation{Host: "h", User: "u", Port: 2200}},
		{[]string{"ssh://u;fp=x@h/"}, Invocation{Host: "h", User: "u"}},
		{[]string{"ssh://a+b%40c@h_1:2"}, Invocation{Host: "h_1", User: "a b@c", Port: 2}},
		{[]string{"SSH://h"}, Invocation{Host: "SSH://h"}},
		{[]string{"-P", "h", "x"}, Invocation{Host: "h", Flags: []string{"-P"}, Command: []string{"x"}}},
		{[]string{"-i", "k1", "-ik2", "h"}, Invocation{Host: "h", Identities: []string{"k1", "k2"}}},
		{[]string{"-F", "/dev/null", "h"}, Invocation{Host: "h", ConfigFile: "/dev/null"}},
		{[]string{"-4Tn", "h"}, Invocation{Host: "h", AddressFamily: "inet", Flags: []string{"-T", "-n"}}},
		{[]string{"-4", "-6", "h"}, Invocation{Host: "h", AddressFamily: "inet6"}},
		{[]string{"-vvv", "-q", "-C", "-x", "-a", "-k", "h"}, Invocation{Host: "h", Verbose: 3, Quiet: true, Compression: true, Flags: []string{"-x", "-a", "-k"}}},
		{[]string{"-q", "-v", "h"}, Invocation{Host: "h", Verbose: 1}},
		{[]string{"-b", "1.1.1.1", "-o", "BindAddress=2.2.2.2", "-b3.3.3.3", "h"}, Invocation{Host: "h", Options: [][2]string{{"bindaddress", "3.3.3.3"}, {"bindaddress", "2.2.2.2"}}}},
		{[]string{"-J", "j1,j2", "h"}, Invocation{Host: "h", Options: [][2]string{{"proxyjump", "j1,j2"}}}},
		// Options after the host, then the command.
		{[]string{"h", "-p", "5", "ls", "-p", "6"}, Invocation{Host: "h", Port: 5, Command: []string{"ls", "-p", "6"}}},
		// -- before the host: the words after it are the command, options or not.
		{[]string{"--", "h", "-p", "5"}, Invocation{Host: "h", Command: []string{"-p", "5"}}},
		{[]string{"h", "--", "-p", "5"}, Invocation{Host: "h", Command: []string{"-p", "5"}}},
		{[]string{"-o", "", "h"}, Invocation{Host: "h"}},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.args)
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("ParseArgs(%q)\n got  %+v\n want %+v", tt.args, *got, tt.want)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string // ssh's words, in ArgError.Msg
	}{
		{[]string{"-z", "h"}, "unknown option -- z"},
		{[]string{"-4z", "h"}, "unknown option -- z"},
		{[]string{"-Z", "tag", "h"}, "unknown option -- Z"},
		{[]string{"ssh://[::1]"}, "bad ssh URI"},
		{[]string{"ssh://a%zz@h"}, "bad ssh URI"},
		{[]string{"ssh://-h"}, "bad ssh URI"},
		{[]string{"ssh://a..b"}, "bad ssh URI"},
		{[]string{"h", "-p"}, "option requires an argument -- p"},
		{[]string{"-p", "abc", "h"}, "Bad port 'abc'"},
		{[]string{"-p", "0", "h"}, "Bad port '0'"},
		{[]string{"-p", "65536", "h"}, "Bad port '65536'"},
		{[]string{}, "missing destination host"},
		{[]string{"-v"}, "missing destination host"},
		{[]string{"user@"}, "missing destination host"},
		{[]string{"@h"}, "empty user name"},
		{[]string{"x,y"}, "hostname contains invalid characters"},
		{[]string{"--", "-h"}, "hostname contains invalid characters"},
		{[]string{"-l", "-x", "h"}, "remote username contains invalid characters"},
		{[]string{"-o", "User=-x", "h"}, "remote username contains invalid characters"},
		{[]string{"-o", "Port", "h"}, `no argument after keyword "port"`},
		{[]string{"-J", "a", "-J", "b", "h"}, "Only a single -J option is permitted"},
		{[]string{"-o", "ProxyJump=a", "-J", "b", "h"}, "Only a single -J option is permitted"},
		{[]string{"-1", "h"}, "SSH protocol v.1 is no longer supported"},
		{[]string{"ssh://h/path"}, "bad ssh URI"},
		{[]string{"ssh://h:0"}, "bad ssh URI"},
		{[]string{"-A", "h"}, "agent forwarding (-A) is not supported"},
	}
	for _, tt := range tests {
		inv, err := ParseArgs(tt.args)
		var ae *ArgError
		if !errors.As(err, &ae) {
			t.Errorf("ParseArgs(%q) = %+v, %v; want *ArgError %q", tt.args, inv, err, tt.msg)
			continue
		}
		if !strings.Contains(ae.Msg, tt.msg) {
			t.Errorf("ParseArgs(%q): %q, want %q", tt.args, ae.Msg, tt.msg)
		}
		if err.Error() != ae.Msg {
			t.Errorf("ParseArgs(%q): error %q is not ssh's words %q alone", tt.args, err, ae.Msg)
		}
	}
}

func TestParseArgsUnsupported(t *testing.T) {
	tests := []struct {
		args []string
		opts []string
		host string
		cmd  []string
	}{
		{[]string{"-L", "8080:x:80", "h", "cmd"}, []string{"-L"}, "h", []string{"cmd"}},
		{[]string{"-tt", "-N", "h"}, []string{"-t", "-N"}, "h", nil},
		{[]string{"-G", "-p", "2", "h"}, []string{"-G"}, "h", nil},
		{[]string{"h", "-R", "1:x:2", "-W", "a:1"}, []string{"-R", "-W"}, "h", nil},
		{[]string{"-XY", "-S", "/tmp/sock", "-O", "check", "h"}, []string{"-X", "-Y", "-S", "-O"}, "h", nil},
		{[]string{"-D1080", "-c", "aes128-ctr", "-m", "hmac-sha1", "-e", "none", "h"}, []string{"-D", "-c", "-m", "-e"}, "h", nil},
		{[]string{"-fgsMKVy", "-E", "log", "-B", "eth0", "-I", "p11", "-Q", "cipher", "-w", "0", "h"},
			[]string{"-f", "-g", "-s", "-M", "-K", "-V", "-y", "-E", "-B", "-I", "-Q", "-w"}, "h", nil},
	}
	for _, tt := range tests {
		inv, err := ParseArgs(tt.args)
		var ue *UnsupportedError
		if !errors.As(err, &ue) {
			t.Errorf("ParseArgs(%q): %v, want *UnsupportedError", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(ue.Options, tt.opts) || ue.Option != tt.opts[0] {
			t.Errorf("ParseArgs(%q): unsupported %q (%q), want %q", tt.args, ue.Options, ue.Option, tt.opts)
		}
		if inv == nil || inv.Host != tt.host || !reflect.DeepEqual(inv.Command, tt.cmd) {
			t.Errorf("ParseArgs(%q): invocation %+v, want host %q command %q", tt.args, inv, tt.host, tt.cmd)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"host", "-p 22 -l u h ls", "-o Port=1 -p2 u@h", "ssh://u@[::1]:22", "-4Tn -- h -x",
		"-L 1:h:2 h", "-vvv -i k -J a,b h cmd", "-o", "-p", "h -o", "-A h", "x,y", "@",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, " ")
		inv, err := ParseArgs(args)
		var ue *UnsupportedError
		switch {
		case err == nil || errors.As(err, &ue):
			if inv == nil || inv.Host == "" {
				t.Fatalf("ParseArgs(%q) = %+v, %v: no host", args, inv, err)
			}
		case inv != nil:
			t.Fatalf("ParseArgs(%q) = %+v with error %v", args, inv, err)
		}
	})
}

// TestOracleRandomArgs compares ParseArgs+Resolve with ssh -G over generated command lines:
// where ssh refuses one, so must socketpipe (an *ArgError, or ExecReason); where ssh takes it,
// the honoured keywords must agree.
func TestOracleRandomArgs(t *testing.T) {
	sshPath := requireSSH(t)
	oe := newOracleEnv(t)
	n := 80
	if s := os.Getenv("ORACLE_RANDOM"); s != "" {
		fmt.Sscan(s, &n)
	}
	if testing.Short() {
		n = 20
	}
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	word := func() []string {
		switch rng.IntN(14) {
		case 0:
			return []string{"-p", pick("22", "2222", "+7", "0", "x", "65536")}
		case 1:
			return []string{pick("-p2200", "-lroot", "-l", "-4", "-6", "-46", "-64T", "-nT", "-v", "-vvq", "-qv", "-C", "-x", "-a", "-k", "-2")}
		case 2:
			return []string{"-l", pick("alice", "bob", "-x", "a b")}
		case 3:
			return []string{"-o", pick("Port=2022", "Port 2023", "User=ou", "user = ou2", "HostName=real.example",
				"AddressFamily=inet6", "ConnectTimeout 5", "Frob=1", "SendEnv=A B", "SetEnv X=1", "Port", "")}
		case 4:
			opt, v := pick("-J", "-b", "-oProxyJump="), pick("j1", "127.0.0.1", "u@j2:2", "ssh://u@j:7", "ssh://u;x@j",
				"[::1]:22", "a,127.0.0.1", "u@", "j:0", "::1", "x,,y", "J1.Example", "none", "[j]", "a@b@c:9", "j:", "ssh://[::1]")
			if opt == "-oProxyJump=" {
				return []string{opt + v}
			}
			return []string{opt, v}
		case 5:
			return []string{pick("-L", "-R", "-D", "-W", "-S", "-O", "-E", "-c", "-m", "-e", "-B", "-Q", "-w"), "1"}
		case 6:
			return []string{pick("-t", "-N", "-G", "-M", "-X", "-Y", "-f", "-g", "-s", "-K", "-y")}
		case 7:
			return []string{pick("-z", "-P", "--", "-", "-1")}
		case 8:
			return []string{"-i", pick("/nonexistent/k", "/etc/hostname")}
		case 9:
			return []string{pick("ls", "echo", "cmd")}
		}
		return []string{pick("host", "u@host", "a@b@host", "ssh://h", "ssh://u@h:2201", "ssh://[::1]:22",
			"HOST.example", "x,y", "@h", "h@", "10.1", "ssh://h/", "user@[::1]")}
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte("Host host\n  Port 3000\n  User cfguser\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		args := []string{"-F", cfgFile}
		for w := 1 + rng.IntN(6); w > 0; w-- {
			args = append(args, word()...)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			defer func() {
				if t.Failed() {
					t.Logf("args %q", args)
				}
			}()
			cmd := exec.Command(sshPath, append([]string{"-G"}, args...)...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + oe.pwHome}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, sshErr := cmd.Output()
			inv, err := ParseArgs(args)
			var ue *UnsupportedError
			if err != nil && !errors.As(err, &ue) {
				// An empty host (user@) is refused on purpose: ssh -G prints it, ssh cannot use it.
				if sshErr == nil && !strings.Contains(string(out), "\nhostname \n") {
					t.Errorf("ParseArgs: %v, but ssh -G accepted it", err)
				}
				return
			}
			if ue != nil && sshErr != nil {
				return // the caller runs ssh, which says what is wrong with -L 1
			}
			cfg, rerr := Resolve(inv, Env{Home: oe.pwHome, User: oe.pwUser, UID: oe.uid, LocalHost: oe.localHost,
				Getenv: oracleGetenv(oe.pwHome)})
			if rerr != nil {
				t.Fatal(rerr)
			}
			agreeWithSSH(t, cfg, sshErr, stderr.String(), out, oe)
		})
	}
}

func TestDropOptions(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-e", "none", "host"}, []string{"host"}},
		{[]string{"-enone", "-p", "22", "host"}, []string{"-p", "22", "host"}},
		{[]string{"-o", "-e", "host"}, []string{"-o", "-e", "host"}},
		{[]string{"host", "-e", "~"}, []string{"host"}},
		{[]string{"-Te", "none", "host"}, []string{"-T", "host"}},
		{[]string{"-Tenone", "host"}, []string{"-T", "host"}},
		{[]string{"--", "host"}, []string{"--", "host"}},
		{[]string{"-x", "-s", "--", "host"}, []string{"-x", "--", "host"}},
		{[]string{"host", "-s"}, []string{"host"}},
		{[]string{"-qs", "-ls", "host"}, []string{"-q", "-ls", "host"}},
		{[]string{"-sp", "2222", "host"}, []string{"-p", "2222", "host"}},
		{[]string{"-F", "-s", "host"}, []string{"-F", "-s", "host"}},
	} {
		if got := DropOptions(tc.in, "es"); !slices.Equal(got, tc.want) {
			t.Errorf("DropOptions(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
