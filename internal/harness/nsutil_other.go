//go:build !linux

package harness

// Systems without network namespaces (setns(2) is Linux's): only the current one exists.

import "errors"

const netnsRunDir = "/run/netns"

var errNoNetns = errors.New("network namespaces are Linux's")

// inNetns runs fn; a named namespace is an error here.
func inNetns(name string, fn func() error) error {
	if name != "" {
		return errNoNetns
	}
	return fn()
}

// deleteNetns has no namespace to delete here.
func deleteNetns(name string) error { return errNoNetns }
