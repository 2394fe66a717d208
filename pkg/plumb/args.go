package plumb

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/socketpipe/socketpipe/internal/quote"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
)

// DefaultTimeout is how long both halves wait for the data connection unless -t says otherwise.
const DefaultTimeout = 30 * time.Second

// MaxBraceDepth bounds the nesting of brace blocks, so hostile input cannot exhaust the stack.
const MaxBraceDepth = 64

// Args is socketpipe's command line, taken apart.
type Args struct {
	Input  []string // -i { ... }: local input generation command; nil if none
	Login  []string // -l { ... }: the login command
	Remote []string // -r { ... }: the remote command, passed verbatim
	Output []string // -o { ... }: local output processing command; nil if none

	Batch      bool          // -b
	Host       string        // -h: the address the remote host connects back to
	Timeout    time.Duration // -t: 0 waits forever
	Verbose    int           // -v, repeatable
	Mode       string        // -m: auto, back, reverse or ssh
	Encrypt    bool          // -e
	Cipher     string        // --cipher
	Streams    int           // --streams: 0 chooses by the path
	ForceExec  bool          // -x: always execute the login command
	Stats      string        // --stats FILE or -
	RemotePath string        // --remote-path
	NoDeploy   bool          // --no-deploy
	DeployDir  string        // --deploy-dir: the cross-built binaries to deploy to other targets
	Ports      rendezvous.PortRange

	// PassThrough (--pass-through, ssh mode only) runs the command over the SSH session as
	// ssh does, without the remote half: for a login whose server forces a command.
	PassThrough bool

	Help    bool // --help
	Version bool // --version
}

// A UsageError is a mistake on the command line; socketpipe exits 1 on it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// ParseArgs parses socketpipe's brace command line (without the program name). Options come in
// any order; a brace block is a "{" word, the words of a command, and the matching "}" word;
// nested blocks are kept verbatim as words of the enclosing command.
func ParseArgs(args []string) (*Args, error) {
	a := &Args{Timeout: DefaultTimeout, Mode: rendezvous.ModeAuto}
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		opt := args[i]
		var inline *string // --opt=value
		if strings.HasPrefix(opt, "--") {
			if k, v, ok := strings.Cut(opt, "="); ok {
				opt, inline = k, &v
			}
		}
		value := func() (string, error) {
			if inline != nil {
				v := *inline
				inline = nil
				return v, nil
			}
			if i+1 >= len(args) {
				return "", usagef("option %s needs an argument", opt)
			}
			i++
			return args[i], nil
		}
		switch opt {
		case "-i", "-l", "-r", "-o":
			if seen[opt] {
				return nil, usagef("option %s given twice", opt)
			}
			seen[opt] = true
			words, next, err := braceBlock(args, i+1, opt)
			if err != nil {
				return nil, err
			}
			i = next - 1
			switch opt {
			case "-i":
				a.Input = words
			case "-l":
				a.Login = words
			case "-r":
				a.Remote = words
			case "-o":
				a.Output = words
			}
		case "-b":
			a.Batch = true
		case "-e":
			a.Encrypt = true
		case "-x":
			a.ForceExec = true
		case "-v":
			a.Verbose++
		case "-vv":
			a.Verbose += 2
		case "-h":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if v == "" {
				return nil, usagef("option -h needs a host name or address")
			}
			a.Host = v
		case "-t":
			v, err := value()
			if err != nil {
				return nil, err
			}
			d, err := ParseTimeout(v)
			if err != nil {
				return nil, err
			}
			a.Timeout = d
		case "-m":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if err := rendezvous.CheckMode(v); err != nil {
				return nil, &UsageError{Msg: err.Error()}
			}
			a.Mode = v
		case "--cipher":
			v, err := value()
			if err != nil {
				return nil, err
			}
			a.Cipher = v
		case "--streams":
			v, err := value()
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > rendezvous.MaxStreams {
				return nil, usagef("bad --streams %s: want a number of data connections from 1 to %d", quote.Word(v), rendezvous.MaxStreams)
			}
			a.Streams = n
		case "--stats":
			v, err := value()
			if err != nil {
				return nil, err
			}
			a.Stats = v
		case "--remote-path":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if v == "" {
				return nil, usagef("option --remote-path needs a path")
			}
			a.RemotePath = v
		case "--no-deploy":
			a.NoDeploy = true
		case "--deploy-dir":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if v == "" {
				return nil, usagef("option --deploy-dir needs a directory")
			}
			a.DeployDir = v
		case "--pass-through":
			a.PassThrough = true
		case "--ports":
			v, err := value()
			if err != nil {
				return nil, err
			}
			pr, err := rendezvous.ParsePortRange(v)
			if err != nil {
				return nil, &UsageError{Msg: err.Error()}
			}
			a.Ports = pr
		case "--help", "--version":
			if inline != nil {
				return nil, usagef("option %s takes no value", opt)
			}
			a.Help, a.Version = opt == "--help", opt == "--version"
			return a, nil
		case "{", "}":
			return nil, usagef("unexpected %s: braces belong after -i, -l, -r or -o", quote.Word(opt))
		default:
			return nil, usagef("unknown option %s", quote.Word(opt))
		}
		if inline != nil {
			return nil, usagef("option %s takes no value", opt)
		}
	}
	if a.Login == nil {
		return nil, usagef("missing -l { login command }")
	}
	if a.Remote == nil {
		return nil, usagef("missing -r { remote command }")
	}
	if a.Input == nil && a.Output == nil {
		return nil, usagef("give at least one of -i { input command } and -o { output command }")
	}
	return a, nil
}

// braceBlock reads "{ words... }" starting at args[i] and returns the words and the index after
// the closing brace.
func braceBlock(args []string, i int, opt string) ([]string, int, error) {
	if i >= len(args) || args[i] != "{" {
		return nil, 0, usagef("option %s must be followed by { command ... } (braces as separate words)", opt)
	}
	depth := 0
	for j := i; j < len(args); j++ {
		switch args[j] {
		case "{":
			depth++
			if depth > MaxBraceDepth {
				return nil, 0, usagef("braces after %s nested deeper than %d", opt, MaxBraceDepth)
			}
		case "}":
			depth--
			if depth == 0 {
				words := append([]string{}, args[i+1:j]...)
				if len(words) == 0 {
					return nil, 0, usagef("empty command in %s { }", opt)
				}
				return words, j + 1, nil
			}
		}
	}
	return nil, 0, usagef("unbalanced braces: %s { has no matching }", opt)
}

// ParseTimeout parses -t: seconds as a non-negative number ("30", "2.5") or a Go duration
// ("1m30s"). Zero means forever.
func ParseTimeout(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || math.IsNaN(f) || f > 1e9 {
			return 0, usagef("-t %s: the timeout must be a number of seconds from 0 (forever) up", quote.Word(s))
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usagef("-t %s is not a number of seconds", quote.Word(s))
	}
	return d, nil
}
