package sshlogin

import (
	"strings"
	"testing"
)

// The changed-key hint names the known_hosts file to edit: ssh-keygen -R without -f edits
// ~/.ssh/known_hosts only, which is the wrong file when UserKnownHostsFile says otherwise.
func TestHostKeyHintNamesTheFile(t *testing.T) {
	e := &HostKeyError{Host: "[127.0.0.1]:2222", Changed: true, File: "/etc/sp/known_hosts", Line: 7}
	h := e.Hint()
	for _, want := range []string{"ssh-keygen -f '/etc/sp/known_hosts' -R '[127.0.0.1]:2222'", "line 7"} {
		if !strings.Contains(h, want) {
			t.Errorf("hint %q does not say %q", h, want)
		}
	}
}
