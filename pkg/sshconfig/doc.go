// Package sshconfig reads an ssh command line and the ssh_config files the way the local
// OpenSSH ssh would, so that a program can log in in-process with the settings the user's own
// ssh would use:
//
//	inv, err := sshconfig.ParseArgs([]string{"-p", "2222", "backup@db1"})
//	if err != nil {
//		return err // *ArgError, *UnsupportedError
//	}
//	cfg, err := sshconfig.Resolve(inv, sshconfig.DefaultEnv())
//	if err != nil {
//		return err
//	}
//	if cfg.ExecReason != "" {
//		// something only the ssh binary can do: run it instead
//	}
//	// dial cfg.HostName:cfg.Port as cfg.User, check cfg.UserKnownHostsFiles, ...
//
// ParseArgs takes ssh's options apart as ssh(1) does. Resolve applies them over ssh_config
// (Host and Match blocks, Include, tokens and environment variables in paths, first value
// wins, the command line first) as the local ssh's OpenSSH release reads it: the keywords,
// Match criteria, algorithm lists and default identity files of each release from 9.0 on, the
// release asked from `ssh -V` only when something depends on it. It is our own reader, and
// `ssh -G` is its oracle: the tests compare Config, written out by WriteG, with what the
// local ssh prints for the same command line and files. Where a configuration asks for what
// an in-process login cannot do (ProxyCommand, ControlMaster, canonicalization through DNS, an
// unknown option, ...), Config.ExecReason says so.
package sshconfig
