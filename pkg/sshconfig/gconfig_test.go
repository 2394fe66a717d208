package sshconfig

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriteG(t *testing.T) {
	c := &Config{
		Host: "Alias", HostName: "alias.example", Port: 2222, User: "bob",
		IdentityFiles: []string{"/h/.ssh/a", "/h/.ssh/b"}, IdentitiesOnly: true,
		IdentityAgent: "none", CertificateFiles: []string{"/h/.ssh/a-cert.pub"},
		UserKnownHostsFiles:   []string{"/h/.ssh/known_hosts", "/h/kh two"},
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts"},
		StrictHostKeyChecking: "yes", HostKeyAlgorithms: []string{"ssh-ed25519"}, HostKeyAlias: "k",
		CheckHostIP: true, HashKnownHosts: true, BatchMode: true,
		ConnectTimeout: 90 * time.Second, ConnectionAttempts: 2,
		ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 4,
		AddressFamily: "inet6", BindAddress: "::1",
		PreferredAuthentications: []string{"publickey", "password"},
		PubkeyAuthentication:     false, Ciphers: []string{"aes128-ctr", "aes256-ctr"},
		SetEnv: []string{"A=1", "B=x y"}, SendEnv: []string{"LANG", "LC_*"},
		ProxyJump: "j1,u@j2:22", LogLevel: "QUIET",
	}
	atRelease(c, "9.2")
	l := tableLists(902)
	want := `host Alias
user bob
hostname alias.example
port 2222
addressfamily inet6
batchmode yes
checkhostip yes
hashknownhosts yes
identitiesonly yes
kbdinteractiveauthentication no
passwordauthentication no
pubkeyauthentication false
stricthostkeychecking true
connectionattempts 2
serveralivecountmax 4
serveraliveinterval 15
bindaddress ::1
ciphers aes128-ctr,aes256-ctr
hostkeyalgorithms ssh-ed25519
hostkeyalias k
identityagent none
kexalgorithms ` + l.Kex + `
loglevel SILENT
macs ` + l.MACs + `
preferredauthentications publickey,password
identityfile /h/.ssh/a
identityfile /h/.ssh/b
certificatefile /h/.ssh/a-cert.pub
globalknownhostsfile /etc/ssh/ssh_known_hosts
userknownhostsfile /h/.ssh/known_hosts /h/kh two
sendenv LANG
sendenv LC_*
setenv A=1
setenv B=x y
connecttimeout 90
proxyjump j1,u@j2:22
`
	var b bytes.Buffer
	if err := c.WriteG(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("WriteG:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteGSpellings(t *testing.T) {
	l := tableLists(902)
	for _, tt := range []struct {
		c    Config
		line string
	}{
		{Config{StrictHostKeyChecking: "no"}, "stricthostkeychecking false"},
		{Config{StrictHostKeyChecking: "accept-new"}, "stricthostkeychecking accept-new"},
		{Config{StrictHostKeyChecking: "ask"}, "stricthostkeychecking ask"},
		{Config{}, "connecttimeout none"},
		{Config{PubkeyAuthentication: true}, "pubkeyauthentication true"},
		{Config{LogLevel: "DEBUG3"}, "loglevel DEBUG3"},
		{Config{}, "ciphers " + l.Ciphers},
		{Config{}, "hostkeyalgorithms " + l.HostKeys},
	} {
		var b bytes.Buffer
		if err := atRelease(&tt.c, "9.2").WriteG(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "\n"+tt.line+"\n") {
			t.Errorf("WriteG(%+v) lacks %q:\n%s", tt.c, tt.line, b.String())
		}
	}
	var b bytes.Buffer
	if err := atRelease(&Config{ProxyJump: "none"}, "9.2").WriteG(&b); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"proxyjump", "identityagent", "bindaddress", "hostkeyalias", "preferredauthentications"} {
		if strings.Contains(b.String(), "\n"+k+" ") {
			t.Errorf("WriteG prints %s when it is not set:\n%s", k, b.String())
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errShort }

var errShort = bytes.ErrTooLarge

func TestWriteGError(t *testing.T) {
	if err := atRelease(&Config{}, "9.2").WriteG(failWriter{}); err == nil {
		t.Error("WriteG to a failing writer: no error")
	}
}

// atRelease pins a Config made by hand to a release of the table, so that WriteG's defaults do
// not depend on the machine's ssh.
func atRelease(c *Config, version string) *Config {
	c.rel = osshFor(Env{OpenSSH: version})
	return c
}

// WriteG follows the release: 9.2 added the host line, 10.0 put AES-GCM first and ML-KEM
// first, and a release's defaults are what a Config without lists prints.
func TestWriteGByRelease(t *testing.T) {
	for _, tt := range []struct {
		version    string
		has, lacks []string
	}{
		{"9.1", []string{"ciphers " + listCiphers90, "kexalgorithms " + listKex90}, []string{"host "}},
		{"9.2", []string{"host h", "kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,"}, nil},
		{"9.9", []string{"kexalgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,mlkem768x25519-sha256,"}, nil},
		{"10.0", []string{"ciphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,", "kexalgorithms mlkem768x25519-sha256,"}, nil},
		{"10.3", []string{"hostkeyalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,"}, nil},
	} {
		var b bytes.Buffer
		if err := atRelease(&Config{Host: "h"}, tt.version).WriteG(&b); err != nil {
			t.Fatal(err)
		}
		for _, l := range tt.has {
			if !strings.Contains("\n"+b.String(), "\n"+l) {
				t.Errorf("%s: WriteG lacks %q:\n%s", tt.version, l, b.String())
			}
		}
		for _, l := range tt.lacks {
			if strings.Contains("\n"+b.String(), "\n"+l) {
				t.Errorf("%s: WriteG has %q:\n%s", tt.version, l, b.String())
			}
		}
	}
}
