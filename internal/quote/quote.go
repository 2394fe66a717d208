// Package quote makes text safe for where it goes: a word in a message (Word), text from the
// other host on a terminal (Printable), a word in a POSIX shell command line (Shell).
package quote

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Word quotes a word from outside (a command name, a message type) for a message: Go-quoted,
// and cut to 64 bytes with "..." after, so a hostile peer cannot flood an error line.
func Word(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "..."
	}
	return strconv.Quote(s)
}

// Printable returns s as it may be shown to a user when it came from the other host: control
// characters (a terminal's escape sequences) replaced by '?', and at most max bytes, cut at a
// character boundary with "..." after.
func Printable(s string, max int) string {
	cut := false
	if len(s) > max {
		s, cut = s[:max], true
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	if cut {
		s += "..."
	}
	return s
}

// shellSafe are the bytes a POSIX shell (and csh, and fish) takes literally in a word.
const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+,:=@%"

// Shell quotes s as one word for a POSIX shell: as it is when every byte is literal, else in
// single quotes (a single quote inside becomes '\”).
func Shell(s string) string {
	if s != "" && strings.Trim(s, shellSafe) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
