// Command splicerelay is a third party between the two halves of a run, for the splice test:
// it connects to both data listeners (retrying until both take a connection, within a minute),
// copies bytes between the two connections both ways until both end, and prints how many
// bytes it carried each way: "A->B B->A".
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: splicerelay addrA addrB")
		os.Exit(2)
	}
	a, b, err := connectBoth(os.Args[1], os.Args[2], time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, "splicerelay:", err)
		os.Exit(1)
	}
	var ab, ba int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ba, _ = io.Copy(a, b)
		a.(*net.TCPConn).CloseWrite()
	}()
	ab, _ = io.Copy(b, a)
	b.(*net.TCPConn).CloseWrite()
	wg.Wait()
	fmt.Println(ab, ba)
}

// connectBoth dials a and b until both answer at once.
func connectBoth(a, b string, within time.Duration) (net.Conn, net.Conn, error) {
	deadline := time.Now().Add(within)
	for {
		ca, err := net.DialTimeout("tcp", a, time.Second)
		if err == nil {
			cb, err2 := net.DialTimeout("tcp", b, time.Second)
			if err2 == nil {
				return ca, cb, nil
			}
			ca.Close()
			err = err2
		}
		if time.Now().After(deadline) {
			return nil, nil, err
		}
		time.Sleep(20 * time.Millisecond) // polling for the listeners, bounded by the deadline
	}
}
