// Package harness runs socketpipe's end-to-end tests against real components: an OpenSSH sshd
// started per test with generated keys in a temporary directory, hosts made of Linux network
// namespaces joined by a bridge, nftables firewalls inside those hosts, hostile peers, and a
// check that no process of a run is left behind.
//
// A typical test builds the binary, starts an sshd whose sessions find it on PATH, and runs a
// command through ssh:
//
//	func TestEcho(t *testing.T) {
//		dir := harness.BuildSocketpipe(t)
//		marker := harness.NewMarker()
//		sshd := harness.StartSSHD(t, harness.SSHDOptions{
//			PathDirs: []string{dir},
//			Env:      map[string]string{harness.MarkerEnv: marker},
//		})
//		out := sshd.Run(t, "echo", "ok") // ssh -F <config> sp-test echo ok
//		...
//		harness.WaitNoProcesses(t, marker, 10*time.Second)
//	}
//
// Tests that need several addresses, a firewall or a cut link make a network:
//
//	nw := harness.NewNetwork(t, 2, harness.NetworkOptions{})
//	a, b := nw.Hosts[0], nw.Hosts[1]
//	sshd := harness.StartSSHD(t, harness.SSHDOptions{Netns: b.Name, ListenAddr: b.IPv4, Port: 22})
//	b.DropInboundExcept(t, 22)
//	out, err := a.Command(ctx, sshd.SSHArgs()...).Output()
//
// Tests over a long fat network make a [WAN]: two hosts joined by an emulated path with a
// round trip, a link rate, a drop-tail queue and random loss, moved packet by packet between
// two TUN devices (this kernel has no netem):
//
//	w := harness.NewWAN(t, harness.WANOptions{RTT: 100 * time.Millisecond, Rate: harness.Gbps})
//	a, b := w.Hosts[0], w.Hosts[1]
//	rtt, err := a.Ping(ctx, b.IPv4) // 100 ms and a little
//
// Everything needs root and the tools of Debian's openssh-server, openssh-client, iproute2 and
// nftables packages. Each entry point calls [Require]: outside CI a missing prerequisite skips
// the test; with CI=true it fails it, because a test that cannot run where it must is a failure.
//
// Hostile peers are [Stranger]s; processes left behind are found by [MarkerEnv] in their
// environment ([ProcessesWithMarker], [WaitNoProcesses]). All namespaces share the test's pid
// namespace, so one scan covers every host.
//
// Things about sshd as root worth knowing when reading a failing test:
//   - sshd ignores the client's environment; SetEnv in sshd_config (SSHDOptions.Env) is how a
//     value reaches the remote processes. SetEnv counts only once in sshd_config, so the harness
//     writes a single line with every variable.
//   - Sessions start in root's home directory from /etc/passwd (/root), whatever HOME says.
//   - Root's login shell, bash, sources $HOME/.bashrc even for `ssh host command`; with the
//     clean HOME a test controls it, with KeepHome the machine's own rc files run (and may be slow).
//   - sshd's per-connection processes call setsid and overwrite their environment with the
//     process title, so they are found as descendants of the listener, not by environment.
//   - Each SSHD log starts with one connection that closes before key exchange: the harness's
//     check that sshd answers with its banner.
//
// Packages whose tests use [BuildSocketpipe] or [BuildMain] should call [Main] from TestMain, so
// the build directory is removed when the test binary ends.
package harness
