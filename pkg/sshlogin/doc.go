// Package sshlogin runs a command on a remote host through a login command, the way
// "ssh host command" would, and connects the command's standard input and output to the
// caller.
//
// A Cmd is shaped like os/exec.Cmd: set Login (the login command words, such as
// {"ssh", "-p", "2222", "user@host"}) and Command (the remote command line), ask for pipes,
// then Start and Wait:
//
//	cmd := sshlogin.Command([]string{"ssh", "backup@db1"}, "socketpipe --serve")
//	cmd.Stderr = os.Stderr
//	in, _ := cmd.StdinPipe()
//	out, _ := cmd.StdoutPipe()
//	if err := cmd.Start(ctx); err != nil {
//		return err // *HostKeyError, *AuthError, or a connection error
//	}
//	// ... talk to the remote command on in and out ...
//	err := cmd.Wait() // nil, *ExitError, or the connection's end
//
// There are two ways to log in.
//
// Native: when the login command is ssh (or a path ending in /ssh), the package reads its
// options and ssh_config with package sshconfig, as the local ssh's OpenSSH release reads
// them, and logs in in-process with
// golang.org/x/crypto/ssh, as the user's own ssh would: the agent and identity files, with
// certificates; known_hosts with StrictHostKeyChecking; ProxyJump hops dialled in-process;
// keepalives; the configured algorithms. No ssh binary is needed, the private keys are read
// only when the server accepts their public halves, and the TCP connection's addresses are
// known (LocalAddr, RemoteAddr), so that the caller can open a direct data connection to the
// same host. Client gives the SSH connection, for more channels on it.
//
// Exec: when the login command is something else (rsh, a wrapper), when ForceExec is set, or
// when the ssh configuration asks for something that cannot be honoured in-process
// (ProxyCommand, ControlMaster, canonicalization through DNS, an unknown option, ...; see
// sshconfig.Config.ExecReason),
// the login command is executed with the remote command line as its last word, as the
// original socketpipe did. The child gets pipes or /dev/null, never the terminal, as stdin
// and stdout, and stays in the caller's process group so that ssh can still ask for a
// password on /dev/tty. Logf says which path was taken and why.
//
// On the native path, Session runs more commands on the same connection without logging in
// again (package deploy uses it to upload and start a program the host lacks). ForcedLogins
// remembers the logins whose server runs a forced command instead of the one asked for.
package sshlogin
