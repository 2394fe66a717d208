// Package deploy runs a program on a remote host that may not have it: from the remote PATH,
// from a per-user cache of copies uploaded earlier, or uploaded now over the native SSH
// connection of a package sshlogin login.
//
// A Deployment gives the session's start command (StartCommand, used as the sshlogin.Cmd's
// NativeCommand); a Watcher reads the session's output and tells whether the program started
// or the host lacks it (Missing), or whether the server runs a forced command instead
// (Watcher.ForcedCommand). Install uploads the local binary when the host's platform is one it
// serves, and RunCommand starts the copy in a new session on the same connection (see
// ExampleDeployment). For a host of another system or architecture (TargetOf names its Go
// target from uname -sm), For picks that target's binary from a directory of cross-built ones.
package deploy
