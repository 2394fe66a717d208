package sshlogin

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/socketpipe/socketpipe/pkg/sshconfig"
	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server that runs a few canned commands.
type testServer struct {
	t        *testing.T
	ln       net.Listener
	hostKey  ssh.Signer
	host     string
	port     int
	password string
	userCA   ssh.PublicKey
	hostCert *ssh.Certificate // also offered as a host key when set
	kbdint   string           // the answer keyboard-interactive wants, if set
	kbdText  [3]string        // keyboard-interactive's name, instruction and question, if set
	banner   string           // the banner sent before authentication, if set
	remotes  []string         // the client address of each connection

	mu         sync.Mutex
	authorized [][]byte
	methods    []string // every authentication attempt's method, "+" appended on success
	logins     atomic.Int32
	freeze     chan struct{} // closed: stop answering (a dead peer)
	conns      []*freezeConn
	allowTCP   atomic.Bool
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, ln: ln, hostKey: hk, host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port, freeze: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *testServer) authorize(pub ssh.PublicKey) {
	s.mu.Lock()
	s.authorized = append(s.authorized, pub.Marshal())
	s.mu.Unlock()
}

// set changes the server's settings while it runs.
func (s *testServer) set(f func()) {
	s.mu.Lock()
	f()
	s.mu.Unlock()
}

func (s *testServer) record(m string) {
	s.mu.Lock()
	s.methods = append(s.methods, m)
	s.mu.Unlock()
}

func (s *testServer) authLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.methods)
}

func (s *testServer) config() *ssh.ServerConfig {
	s.mu.Lock()
	password, userCA, hostCert, kbdint := s.password, s.userCA, s.hostCert, s.kbdint
	kbdText, banner := s.kbdText, s.banner
	s.mu.Unlock()
	if kbdText == [3]string{} {
		kbdText = [3]string{"tester", "one question", "Secret word: "}
	}
	cc := &ssh.CertChecker{
		IsUserAuthority: func(k ssh.PublicKey) bool {
			return userCA != nil && bytes.Equal(k.Marshal(), userCA.Marshal())
		},
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c, ok := key.(*ssh.Certificate); ok {
				p, err := cc.Authenticate(md, c)
				if err == nil {
					s.record("publickey-cert")
				}
				return p, err
			}
			s.mu.Lock()
			ok := slices.ContainsFunc(s.authorized, func(b []byte) bool { return bytes.Equal(b, key.Marshal()) })
			s.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("not authorized")
			}
			return nil, nil
		},
		AuthLogCallback: func(md ssh.ConnMetadata, method string, err error) {
			if err == nil {
				method += "+"
			}
			s.record(method)
		},
	}
	if password != "" {
		cfg.PasswordCallback = func(md ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == password {
				return nil, nil
			}
			return nil, fmt.Errorf("wrong password")
		}
	}
	if kbdint != "" {
		cfg.KeyboardInteractiveCallback = func(md ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			a, err := ch(kbdText[0], kbdText[1], []string{kbdText[2]}, []bool{false})
			if err != nil {
				return nil, err
			}
			if len(a) != 1 || a[0] != kbdint {
				return nil, fmt.Errorf("wrong answer")
			}
			return nil, nil
		}
	}
	if banner != "" {
		cfg.BannerCallback = func(ssh.ConnMetadata) string { return banner }
	}
	cfg.AddHostKey(s.hostKey)
	if hostCert != nil {
		cs, err := ssh.NewCertSigner(hostCert, s.hostKey)
		if err != nil {
			panic(err)
		}
		cfg.AddHostKey(cs)
	}
	return cfg
}

// freezeConn stops reading and writing when the server freezes: a peer that vanished.
type freezeConn struct {
	net.Conn
	freeze chan struct{}
}

func (f *freezeConn) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	select {
	case <-f.freeze:
		select {} // never answer again; the client must give up by itself
	default:
	}
	return n, err
}

func (s *testServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		fc := &freezeConn{Conn: c, freeze: s.freeze}
		s.mu.Lock()
		s.remotes = append(s.remotes, c.RemoteAddr().String())
		s.conns = append(s.conns, fc)
		s.mu.Unlock()
		go s.handle(fc)
	}
}

func (s *testServer) handle(c net.Conn) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config())
	if err != nil {
		return
	}
	defer sc.Close()
	s.logins.Add(1)
	go func() {
		for r := range reqs {
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go s.session(ch, creqs)
		case "direct-tcpip":
			var m struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if !s.allowTCP.Load() || ssh.Unmarshal(nc.ExtraData(), &m) != nil {
				nc.Reject(ssh.Prohibited, "no")
				continue
			}
			out, err := net.Dial("tcp", net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port))))
			if err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				out.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			go func() {
				io.Copy(out, ch)
				out.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				io.Copy(ch, out)
				ch.Close()
			}()
		default:
			nc.Reject(ssh.UnknownChannelType, "no")
		}
	}
}

// session runs the canned commands: "echo WORDS", "cat", "exit N", "signal NAME", "env",
// "stderr WORDS", "wait" (until stdin ends).
func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	env := map[string]string{}
	for r := range reqs {
		switch r.Type {
		case "env":
			var m struct{ Name, Value string }
			ssh.Unmarshal(r.Payload, &m)
			env[m.Name] = m.Value
			if r.WantReply {
				r.Reply(true, nil)
			}
		case "exec":
			var m struct{ Command string }
			ssh.Unmarshal(r.Payload, &m)
			if m.Command == "refuse" {
				r.Reply(false, nil) // as sshd does, the channel stays open
				continue
			}
			r.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			status, sig := runCanned(m.Command, ch, env)
			if sig != "" {
				ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
					Signal     string
					CoreDumped bool
					Error      string
					Lang       string
				}{sig, false, "killed for the test", ""}))
			} else {
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			}
			return
		default:
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}
}

func runCanned(command string, ch ssh.Channel, env map[string]string) (uint32, string) {
	name, arg, _ := strings.Cut(command, " ")
	switch name {
	case "echo":
		fmt.Fprintln(ch, arg)
	case "stderr":
		fmt.Fprintln(ch.Stderr(), arg)
	case "cat":
		io.Copy(ch, ch)
	case "wait":
		io.Copy(io.Discard, ch)
	case "exit":
		n, _ := strconv.Atoi(arg)
		return uint32(n), ""
	case "signal":
		return 0, arg
	case "env":
		var keys []string
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(ch, "%s=%s\n", k, env[k])
		}
	default:
		fmt.Fprintf(ch.Stderr(), "unknown command %q\n", command)
		return 127, ""
	}
	return 0, ""
}

// testHome is a client's home directory with .ssh, an empty ssh config and known_hosts.
type testHome struct {
	t          testing.TB
	dir        string
	knownHosts string
	config     string
	env        sshconfig.Env
}

func newTestHome(t testing.TB) *testHome {
	t.Helper()
	dir := t.TempDir()
	h := &testHome{t: t, dir: dir, knownHosts: filepath.Join(dir, ".ssh", "known_hosts"), config: filepath.Join(dir, "ssh_config")}
	os.MkdirAll(filepath.Join(dir, ".ssh"), 0o700)
	os.WriteFile(h.config, nil, 0o600)
	h.env = sshconfig.DefaultEnv()
	h.env.Home = dir
	for _, v := range []string{"SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY", "WAYLAND_DISPLAY"} {
		t.Setenv(v, "")
	}
	return h
}

// trust adds a server's host key to known_hosts.
func (h *testHome) trust(s *testServer) {
	h.t.Helper()
	line := fmt.Sprintf("[%s]:%d %s", s.host, s.port, ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()))
	f, err := os.OpenFile(h.knownHosts, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	f.WriteString(line)
	f.Close()
}

// key writes an ed25519 identity file (encrypted when passphrase is not empty) with its .pub.
func (h *testHome) key(name, passphrase string) (ed25519.PrivateKey, ssh.PublicKey, string) {
	h.t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, name)
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, name, []byte(passphrase))
	}
	if err != nil {
		h.t.Fatal(err)
	}
	file := filepath.Join(h.dir, ".ssh", name)
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		h.t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(priv.Public())
	os.WriteFile(file+".pub", ssh.MarshalAuthorizedKey(pub), 0o644)
	return priv, pub, file
}

// command is Command(h.login(s, extra...), command) in this home.
func (h *testHome) command(s *testServer, command string, extra ...string) *Cmd {
	c := Command(h.login(s, extra...), command)
	c.Env = &h.env
	return c
}

// login is the ssh command line for s, hermetic: this home's config and known_hosts only.
func (h *testHome) login(s *testServer, extra ...string) []string {
	args := []string{"ssh", "-F", h.config, "-p", strconv.Itoa(s.port),
		"-o", "UserKnownHostsFile=" + h.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null"}
	args = append(args, extra...)
	return append(args, "tester@"+s.host)
}
