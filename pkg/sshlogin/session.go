package sshlogin

import (
	"context"
	"errors"
)

// Session returns a Cmd that runs command in a new session on c's SSH connection: another
// command on the same host without logging in again, with the same environment requests
// (SetEnv, SendEnv). c must have started on the native path. Set up the returned Cmd as one
// from Command (streams or pipes), then Start and Wait it. Its Wait and Close end only its own
// session; the connection stays until c is closed or waited for.
func (c *Cmd) Session(command string) (*Cmd, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.run.(*nativeRun); !ok || !c.native {
		return nil, errors.New("more sessions need a started native login")
	}
	return &Cmd{Login: c.Login, Command: command, Logf: c.Logf, parent: c}, nil
}

// startSibling starts c.Command in a new session on the parent's connection.
func (c *Cmd) startSibling(ctx context.Context) error {
	p := c.parent
	p.mu.Lock()
	pr, ok := p.run.(*nativeRun)
	p.mu.Unlock()
	if !ok {
		return errors.New("more sessions need a started native login")
	}
	n := &nativeRun{
		client: pr.client, local: pr.local, remote: pr.remote, ka: pr.ka,
		cfg: pr.cfg, env: pr.env, d: pr.d, shared: true,
		connDone: make(chan struct{}),
	}
	go func() {
		<-pr.connDone
		n.connErr = pr.connErr
		close(n.connDone)
	}()
	if err := n.startSession(ctx, c, pr.cfg, pr.env, c.Command, pr.d); err != nil {
		n.close()
		return err
	}
	p.mu.Lock()
	ep := p.endpoint
	p.mu.Unlock()
	c.mu.Lock()
	c.native = true
	c.run = n
	c.client = n.client
	c.endpoint = ep
	c.local, c.remote = n.local, n.remote
	c.mu.Unlock()
	return nil
}
