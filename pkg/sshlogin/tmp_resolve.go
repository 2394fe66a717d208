package sshlogin

// Temporary stand-in for the sshconfig branch's ParseArgs/Resolve/Env, so that the native and
// exec paths compile and can be tested. Deleted when that branch is merged. It reads no
// config file: it applies the command line over OpenSSH's defaults.

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Env is what resolution reads from the process environment.
type Env struct {
	Home   string
	User   string
	Getenv func(string) string
}

// DefaultEnv reads the real environment.
func DefaultEnv() Env {
	e := Env{Home: os.Getenv("HOME"), Getenv: os.Getenv}
	if u, err := user.Current(); err == nil {
		e.User = u.Username
		if e.Home == "" {
			e.Home = u.HomeDir
		}
	}
	return e
}

// ParseArgs takes an ssh command line apart (temporary, minimal).
func ParseArgs(args []string) (*Invocation, error) {
	inv := &Invocation{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			if i < len(args) {
				inv.Host = args[i]
				inv.Command = args[i+1:]
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			inv.Host = a
			inv.Command = args[i+1:]
			break
		}
		flag := a[1:2]
		val := a[2:]
		needs := strings.Contains("plioFJ", flag)
		if needs && val == "" {
			i++
			if i >= len(args) {
				return nil, fmt.Errorf("sshlogin: option -%s needs an argument", flag)
			}
			val = args[i]
		}
		switch flag {
		case "p":
			p, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("sshlogin: bad port %q", val)
			}
			inv.Port = p
		case "l":
			inv.User = val
		case "i":
			inv.Identities = append(inv.Identities, val)
		case "F":
			inv.ConfigFile = val
		case "J":
			inv.Options = append(inv.Options, [2]string{"proxyjump", val})
		case "o":
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				k, v, _ = strings.Cut(val, " ")
			}
			inv.Options = append(inv.Options, [2]string{strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)})
		case "4":
			inv.AddressFamily = "inet"
		case "6":
			inv.AddressFamily = "inet6"
		case "v":
			inv.Verbose += len(a) - 1
		case "q":
			inv.Quiet = true
		case "A":
			return nil, fmt.Errorf("sshlogin: -A (agent forwarding) is not supported")
		default:
			inv.Flags = append(inv.Flags, a)
		}
	}
	if inv.Host == "" {
		return nil, fmt.Errorf("sshlogin: no destination host")
	}
	if u, h, ok := strings.Cut(inv.Host, "@"); ok && !strings.Contains(h, "@") {
		if inv.User == "" {
			inv.User = u
		}
		inv.Host = h
	}
	return inv, nil
}

// Resolve applies the command line over the defaults (temporary, no config files).
func Resolve(inv *Invocation, env Env) (*Config, error) {
	home := env.Home
	c := &Config{
		Host:                         inv.Host,
		HostName:                     inv.Host,
		Port:                         22,
		User:                         env.User,
		UserKnownHostsFiles:          []string{filepath.Join(home, ".ssh/known_hosts"), filepath.Join(home, ".ssh/known_hosts2")},
		GlobalKnownHostsFiles:        []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		StrictHostKeyChecking:        "ask",
		ConnectionAttempts:           1,
		ServerAliveCountMax:          3,
		AddressFamily:                "any",
		PasswordAuthentication:       true,
		KbdInteractiveAuthentication: true,
		PubkeyAuthentication:         true,
		LogLevel:                     "INFO",
	}
	if inv.Port != 0 {
		c.Port = inv.Port
	}
	if inv.User != "" {
		c.User = inv.User
	}
	if inv.AddressFamily != "" {
		c.AddressFamily = inv.AddressFamily
	}
	expand := func(p string) string {
		if strings.HasPrefix(p, "~/") {
			return filepath.Join(home, p[2:])
		}
		return p
	}
	for _, id := range inv.Identities {
		c.IdentityFiles = append(c.IdentityFiles, expand(id))
	}
	seen := map[string]bool{}
	yes := func(v string) bool { return strings.EqualFold(v, "yes") || strings.EqualFold(v, "true") }
	for _, o := range inv.Options {
		k, v := o[0], o[1]
		if seen[k] && k != "identityfile" && k != "certificatefile" && k != "setenv" && k != "sendenv" {
			continue
		}
		seen[k] = true
		switch k {
		case "hostname":
			c.HostName = v
		case "port":
			c.Port, _ = strconv.Atoi(v)
		case "user":
			c.User = v
		case "identityfile":
			c.IdentityFiles = append(c.IdentityFiles, expand(v))
		case "certificatefile":
			c.CertificateFiles = append(c.CertificateFiles, expand(v))
		case "identitiesonly":
			c.IdentitiesOnly = yes(v)
		case "identityagent":
			c.IdentityAgent = v
		case "userknownhostsfile":
			c.UserKnownHostsFiles = nil
			for _, f := range strings.Fields(v) {
				c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, expand(f))
			}
		case "globalknownhostsfile":
			c.GlobalKnownHostsFiles = nil
			for _, f := range strings.Fields(v) {
				c.GlobalKnownHostsFiles = append(c.GlobalKnownHostsFiles, expand(f))
			}
		case "stricthostkeychecking":
			switch strings.ToLower(v) {
			case "yes", "true":
				c.StrictHostKeyChecking = "yes"
			case "no", "false", "off":
				c.StrictHostKeyChecking = "no"
			default:
				c.StrictHostKeyChecking = strings.ToLower(v)
			}
		case "hostkeyalgorithms":
			c.HostKeyAlgorithms = strings.Split(v, ",")
		case "hostkeyalias":
			c.HostKeyAlias = v
		case "hashknownhosts":
			c.HashKnownHosts = yes(v)
		case "batchmode":
			c.BatchMode = yes(v)
		case "connecttimeout":
			n, _ := strconv.Atoi(v)
			c.ConnectTimeout = time.Duration(n) * time.Second
		case "connectionattempts":
			c.ConnectionAttempts, _ = strconv.Atoi(v)
		case "serveraliveinterval":
			n, _ := strconv.Atoi(v)
			c.ServerAliveInterval = time.Duration(n) * time.Second
		case "serveralivecountmax":
			c.ServerAliveCountMax, _ = strconv.Atoi(v)
		case "addressfamily":
			c.AddressFamily = v
		case "bindaddress":
			c.BindAddress = v
		case "preferredauthentications":
			c.PreferredAuthentications = strings.Split(v, ",")
		case "passwordauthentication":
			c.PasswordAuthentication = yes(v)
		case "kbdinteractiveauthentication":
			c.KbdInteractiveAuthentication = yes(v)
		case "pubkeyauthentication":
			c.PubkeyAuthentication = yes(v)
		case "ciphers":
			c.Ciphers = strings.Split(v, ",")
		case "kexalgorithms":
			c.KexAlgorithms = strings.Split(v, ",")
		case "macs":
			c.MACs = strings.Split(v, ",")
		case "setenv":
			c.SetEnv = append(c.SetEnv, strings.Fields(v)...)
		case "sendenv":
			c.SendEnv = append(c.SendEnv, strings.Fields(v)...)
		case "proxyjump":
			c.ProxyJump = v
		case "loglevel":
			c.LogLevel = strings.ToUpper(v)
		case "proxycommand", "controlmaster", "controlpath", "localcommand", "knownhostscommand", "pkcs11provider":
			c.ExecReason = fmt.Sprintf("option %s is set (command line)", k)
		default:
			c.ExecReason = fmt.Sprintf("unknown option %s", k)
		}
	}
	if len(c.IdentityFiles) == 0 {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"} {
			c.IdentityFiles = append(c.IdentityFiles, filepath.Join(home, ".ssh", n))
		}
	}
	return c, nil
}
