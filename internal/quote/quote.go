// Package quote makes text safe for where it goes: a word in a message (Word), text from the
// other host on a terminal (Printable, PrintableText), a word in a POSIX shell command line (Shell).
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

// Printable returns s, text from the other host, as it may be shown on one line of a
// terminal: escaped as OpenSSH escapes what a server sends (its utf8.c): a printable character
// stays, and every byte of anything else (C0 and C1 controls such as ESC and CSI, DEL, invalid
// UTF-8) becomes a backslash and three octal digits, as vis(3) writes it with VIS_OCTAL; so
// ESC is \033. Beyond OpenSSH, the Unicode bidirectional controls (U+202A-U+202E,
// U+2066-U+2069, ...) are escaped too: they reorder the rest of the line on the screen. The
// result is at most max bytes, cut before a character or an escape, with "..." after. Its
// bytes are all printable, so Printable of its own result changes nothing but the length.
func Printable(s string, max int) string { return printable(s, max, false) }

// PrintableText is Printable for text of several lines (an SSH banner, a keyboard-interactive
// instruction): newlines, carriage returns and tabs pass, as ssh lets them pass there.
func PrintableText(s string, max int) string { return printable(s, max, true) }

func printable(s string, max int, lines bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		valid := r != utf8.RuneError || n > 1
		keep := valid && !unicode.IsControl(r) && !unicode.Is(unicode.Bidi_Control, r) ||
			lines && (r == '\n' || r == '\r' || r == '\t')
		size := n
		if !keep {
			size = 4 * n
		}
		if b.Len()+size > max {
			b.WriteString("...")
			break
		}
		if keep {
			b.WriteString(s[i : i+n])
		} else {
			for _, c := range []byte(s[i : i+n]) {
				b.WriteByte('\\')
				b.WriteByte('0' + c>>6)
				b.WriteByte('0' + c>>3&7)
				b.WriteByte('0' + c&7)
			}
		}
		i += n
	}
	return b.String()
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
