module github.com/socketpipe/socketpipe

go 1.26.8

require (
	github.com/creack/pty v1.1.24 // indirect
	github.com/kevinburke/ssh_config v1.6.0 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	github.com/skeema/knownhosts v1.3.3 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	golang.org/x/tools v0.26.0 // indirect
)
