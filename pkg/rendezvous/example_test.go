package rendezvous_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// Two halves that share a secret make a data connection: one listens, the other dials, both
// prove the secret, and the client commits.
func Example() {
	secret, _ := rendezvous.NewSecret()
	l, err := rendezvous.Listen(net.IPv4(127, 0, 0, 1), rendezvous.PortRange{}, secret, rendezvous.RoleServer)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	client, err := rendezvous.Dial(context.Background(), l.Addr().String(), secret, rendezvous.RoleClient)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Conn.Close()
	client.Commit()

	server := <-l.Proven()
	defer server.Conn.Close()
	if err := server.AwaitCommit(time.Time{}); err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		client.Conn.Write([]byte("hello"))
		client.Conn.(*net.TCPConn).CloseWrite()
	}()
	b, _ := io.ReadAll(server.Conn)
	fmt.Printf("%s\n", b)
	// Output: hello
}
