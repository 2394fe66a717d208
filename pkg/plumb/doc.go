// Package plumb is socketpipe's pipeline: the brace command line, the two halves of a run,
// the local and remote process plumbing, and pipefail exit statuses.
//
// A run has a Client, on the host where socketpipe was started, and a Server (the remote half,
// "socketpipe --serve") on the remote host. Something else starts the Server and joins the two
// by a byte stream, the control channel: in socketpipe that is a login session (package
// sshlogin), whose stdin and stdout the Client gets. The Client then
//
//   - sends the request (the remote command's argv, the rendezvous mode, a fresh secret),
//   - makes the data connection with package rendezvous (either side may listen; both prove
//     the secret before a byte of data flows),
//   - starts the local commands with the connected socket itself as their standard output
//     (-i) and input (-o): socketpipe moves no data bytes in plain mode,
//   - waits for every stage and the remote status, and returns a Report whose Status is the
//     pipefail status of input, remote and output.
//
// The Server runs the remote command with execvp (no shell) in its own process group, with
// the socket as its stdin and stdout, kills the group when the client goes away, and reports
// the command's exit status or signal.
//
// In the relayed modes (ssh mode, where the data flows over the control channel itself, and
// -e, where it is encrypted) socketpipe copies between the commands' pipes and the connection,
// with large reused buffers.
//
// Use from Go, with any login that gives a byte stream to the remote half:
//
//	login := sshlogin.Command([]string{"ssh", "backup@nas"}, "socketpipe --serve")
//	w, _ := login.StdinPipe()
//	r, _ := login.StdoutPipe()
//	if err := login.Start(ctx); err != nil {
//		return err
//	}
//	c := &plumb.Client{
//		Input:     []string{"tar", "cf", "-", "/home"},
//		Remote:    []string{"dd", "of=/dev/nst0", "bs=64k"},
//		Stderr:    os.Stderr,
//		LocalAddr: login.LocalAddr(), RemoteAddr: login.RemoteAddr(), Native: login.Native(),
//	}
//	rep, err := c.Run(ctx, r, w)
//	w.Close()
//	login.Wait()
//	if err != nil {
//		return err // socketpipe's own failure
//	}
//	status, stage := rep.Status() // 0, or the rightmost failed stage
package plumb
