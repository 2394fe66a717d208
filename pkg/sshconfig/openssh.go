package sshconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// What each OpenSSH release's ssh accepts in ssh_config and uses by default, so that Resolve reads
// a configuration as the local ssh would. The facts were read from openssh-portable at the
// release tags V_9_0_P1 to V_10_5_P1: the keyword table and match_cfg_line in readconf.c (and
// their entries in ssh_config.5), the default proposals in myproposal.h, the algorithm tables
// in cipher.c, mac.c, kex.c (kex-names.c from 9.8) and sshkey.c, the default identities in
// readconf.c's fill_default_options, the token lists in sshconnect.h and the -G dump in
// readconf.c's dump_client_config. Builds are taken as upstream's default ./configure with
// OpenSSL: DSA keys are in until 9.7, off from 9.8 (--enable-dsa-keys) and gone from 10.0;
// XMSS is never on. A local ssh binary's own lists (its build, its vendor's patches) replace
// the table's algorithm lists when it can be asked (sshversion.go).
//
// Releases are numbered major*100+minor: 902 is OpenSSH 9.2.

const (
	// osshOldest is the oldest release the table describes; an older ssh is read as this one
	// (8.x differs in defaults the table does not record, such as CheckHostIP before 8.5).
	osshOldest = 900
	// osshNewest is the newest release the table describes, and the one followed when there is
	// no ssh binary to ask: a configuration written today is written for it.
	osshNewest = 1005
)

// osshReleases lists the releases the table describes, oldest first (the p1 tags of
// openssh-portable; 9.3p2, 9.9p2 and 10.0p2 changed nothing the table records).
var osshReleases = []int{900, 901, 902, 903, 904, 905, 906, 907, 908, 909, 1000, 1001, 1002, 1003, 1004, 1005}

// keywordSince gives the first release whose ssh_config accepts a keyword, for the keywords
// added since 9.0; every other keyword in keywords is accepted by every release in the table.
// An ssh older than the keyword fails with "Bad configuration option" unless IgnoreUnknown
// covers it.
var keywordSince = map[string]int{
	"requiredrsasize":         901,
	"enableescapecommandline": 902,
	"tag":                     904,
	"obscurekeystroketiming":  905,
	"channeltimeout":          906,
	"versionaddendum":         1000,
	"refuseconnection":        1001,
	"warnweakcrypto":          1001,
}

// matchSince gives the first release that accepts a Match criterion, for those added since 9.0
// (all, canonical, final, exec, host, originalhost, user and localuser are older).
var matchSince = map[string]int{
	"localnetwork": 904,
	"tagged":       904,
	"version":      1000,
	"sessiontype":  1000,
	"command":      1000,
}

// appleKeywords are the keywords Apple's build adds. Users copy their macOS configuration to
// other systems, where the local ssh would refuse it; socketpipe accepts them everywhere, as
// macOS does (behind IgnoreUnknown or not), and they have no effect in-process.
var appleKeywords = map[string]string{
	// Apple's ssh_config(5): whether passphrases are looked up in, and stored to, the user's
	// keychain; "yes" or "no", default "no".
	"usekeychain": "UseKeychain",
}

// algLists are the four algorithm lists of one build, as comma-separated names: the defaults
// ssh -G prints, and all that ssh -Q names (what a "+", "^" or pattern may pick from).
type algLists struct {
	Ciphers, MACs, Kex, HostKeys             string // defaults
	AllCiphers, AllMACs, AllKex, AllHostKeys string // supported
}

// The lists the table is built from. Only the differences between releases are spelled out in
// tableLists.
const (
	listCiphers90  = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com"
	listCiphers100 = "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"
	listMACs       = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1"
	listKexTail    = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256"
	listKex90      = "sntrup761x25519-sha512@openssh.com," + listKexTail
	listKex99      = "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,mlkem768x25519-sha256," + listKexTail
	listKex100     = "mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com," + listKexTail
	listHostKeys90 = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
	// 10.3 adds the webauthn key type (and its certificate) to the defaults.
	listHostKeys103 = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"

	listAllCiphers = "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
	listAllMACs    = "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,hmac-md5-96,umac-64@openssh.com,umac-128@openssh.com,hmac-sha1-etm@openssh.com,hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,umac-64-etm@openssh.com,umac-128-etm@openssh.com"
	listAllKexHead = "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521"
	listAllKex90   = listAllKexHead + ",curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512@openssh.com"
	listAllKex99   = listAllKexHead + ",curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,mlkem768x25519-sha256"
	listAllKex105  = listAllKexHead + ",mlkem768nistp256-sha256,curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,mlkem768x25519-sha256"

	keysEd25519  = "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com"
	keysMLDSA    = "ssh-mldsa44-ed25519@openssh.com,ssh-mldsa44-ed25519-cert-v01@openssh.com"
	keysECDSA    = "ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
	keysWebauthn = "webauthn-sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"
	keysDSA      = "ssh-dss,ssh-dss-cert-v01@openssh.com"
	keysRSA      = "ssh-rsa,ssh-rsa-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com"
)

// tableLists gives the algorithm lists of release v's default OpenSSL build.
func tableLists(v int) algLists {
	l := algLists{
		Ciphers: listCiphers90, MACs: listMACs, Kex: listKex90, HostKeys: listHostKeys90,
		AllCiphers: listAllCiphers, AllMACs: listAllMACs, AllKex: listAllKex90,
	}
	// 9.9: the sntrup761x25519-sha512 name without @openssh.com, and mlkem768x25519-sha256.
	if v >= 909 {
		l.Kex, l.AllKex = listKex99, listAllKex99
	}
	// 10.0: mlkem768x25519-sha256 first; AES-GCM before AES-CTR.
	if v >= 1000 {
		l.Kex, l.Ciphers = listKex100, listCiphers100
	}
	// 10.5: mlkem768nistp256-sha256 (supported, not a default).
	if v >= 1005 {
		l.AllKex = listAllKex105
	}
	if v >= 1003 {
		l.HostKeys = listHostKeys103
	}
	keys := []string{keysEd25519}
	if v >= 1004 {
		keys = append(keys, keysMLDSA) // ML-DSA-44 with Ed25519 (USE_MLDSA, on by default)
	}
	ecdsa := keysECDSA
	if v >= 1003 {
		ecdsa += "," + keysWebauthn
	}
	keys = append(keys, ecdsa)
	if v < 908 {
		keys = append(keys, keysDSA)
	}
	keys = append(keys, keysRSA)
	l.AllHostKeys = strings.Join(keys, ",")
	return l
}

// defaultIdentityFiles gives the identities release v tries when none is configured, in its
// order: DSA's until 9.7 (later builds lack DSA), XMSS's until 10.0, ML-DSA-44's from 10.5.
func defaultIdentityFiles(v int) []string {
	ids := []string{"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk"}
	if v >= 1005 {
		ids = append(ids, "~/.ssh/id_mldsa44_ed25519")
	}
	if v < 1001 {
		ids = append(ids, "~/.ssh/id_xmss")
	}
	if v < 908 {
		ids = append(ids, "~/.ssh/id_dsa")
	}
	return ids
}

// releaseDependentIdentities are the default identity files that only some releases try: where
// none of them exists, which release is local does not change what is tried.
var releaseDependentIdentities = []string{"id_mldsa44_ed25519", "id_xmss", "id_dsa"}

// Behaviour that changed between releases, by the release that changed it.
const (
	relHostInG          = 902  // ssh -G prints "host"
	relMatchNetTag      = 904  // Match localnetwork and tagged; Tag
	relJumpToken        = 906  // %j, and the jump host in %C's hash; host and -l user checked for shell characters
	relIncludeTokens    = 909  // Include paths take %-tokens and ${VAR}; Match exec takes %j
	relUserTokens       = 1000 // User takes %-tokens and ${VAR} (except %r and %C) and is checked
	relUserTokensConfig = 1001 // ... only a User from a configuration file; Match final only un-negated
)

// pathTokens gives the %-tokens of release v's file names (IdentityFile, CertificateFile,
// UserKnownHostsFile, IdentityAgent, ControlPath): DEFAULT_CLIENT_PERCENT_EXPAND_ARGS.
func pathTokens(v int) string {
	if v >= relJumpToken {
		return "CLdhijklnpru"
	}
	return "CLdhiklnpru"
}

// parseOpenSSH reads a release from `ssh -V` output ("OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL
// 3.0.19 27 Jan 2026") or a bare version ("9.2", "10.0p2"). It returns the release number and
// the release string as SSH_RELEASE spells it (what Match version matches against).
func parseOpenSSH(s string) (v int, release string, err error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	release, _, _ = strings.Cut(s, ",")
	num, hadPrefix := strings.CutPrefix(release, "OpenSSH_")
	if !hadPrefix {
		if strings.ContainsAny(release, " _") {
			return 0, "", fmt.Errorf("not an OpenSSH version: %q", s)
		}
		release = "OpenSSH_" + release
	}
	majs, rest, ok := strings.Cut(num, ".")
	if !ok {
		return 0, "", fmt.Errorf("not an OpenSSH version: %q", s)
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	maj, err1 := strconv.Atoi(majs)
	mnr, err2 := strconv.Atoi(rest[:i])
	if err1 != nil || err2 != nil || maj <= 0 || mnr < 0 || mnr > 99 || maj > 99 {
		return 0, "", fmt.Errorf("not an OpenSSH version: %q", s)
	}
	return maj*100 + mnr, release, nil
}

// tableRelease maps a release number to the row of the table that describes it: the newest
// row not newer than it, or the oldest row.
func tableRelease(v int) int {
	row := osshReleases[0]
	for _, r := range osshReleases {
		if r <= v {
			row = r
		}
	}
	return row
}

func releaseName(v int) string {
	return fmt.Sprintf("%d.%d", v/100, v%100)
}
