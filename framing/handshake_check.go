package framing

import (
	"bytes"
	"encoding/base64"
)

// gobwas/ws parses a request head leniently: it trims whitespace between a
// field name and its colon, takes a folded line for a header of its own,
// lets control bytes through, keeps the last of several Sec-WebSocket-Key
// or Host fields, checks only the length of the key, and wants Upgrade and
// each Connection field alone to name the protocol. The checks below run
// first, so that what RFC 7230 section 3.2.4 and RFC 6455 section 4.2.1 say
// to refuse is refused with 400 (a head read differently by a proxy in front
// and by us is a request smuggling risk), and what real clients and proxies
// send in list form is accepted.

// headVerdict is the outcome of checkHead.
type headVerdict uint8

const (
	headOK      headVerdict = iota
	headBad                 // answer 400
	headRewrite             // acceptable once Upgrade and Connection are normalised
)

var (
	nameHost       = []byte("Host")
	nameKey        = []byte("Sec-WebSocket-Key")
	nameUpgrade    = []byte("Upgrade")
	nameConnection = []byte("Connection")
	crlf           = []byte("\r\n")
)

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// requestLine splits "method SP target SP HTTP/d.d"; ok is false for
// anything else, control bytes included.
func requestLine(line []byte) (method, proto []byte, ok bool) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, nil, false
	}
	method = line[:sp1]
	for _, c := range method {
		if !isTchar(c) {
			return nil, nil, false
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return nil, nil, false
	}
	for _, c := range rest[:sp2] {
		if c <= ' ' || c == 0x7f {
			return nil, nil, false
		}
	}
	proto = rest[sp2+1:]
	if len(proto) != 8 || string(proto[:5]) != "HTTP/" || !isDigit(proto[5]) || proto[6] != '.' || !isDigit(proto[7]) {
		return nil, nil, false
	}
	return method, proto, true
}

// upgradable reports whether a well-formed request line is one gobwas/ws
// goes on to read the headers of: GET and HTTP/1.1 or a later 1.x.
func upgradable(method, proto []byte) bool {
	return string(method) == "GET" && proto[5] == '1' && proto[7] >= '1'
}

// BadRequestStart reports whether b, the start of a request head whose end
// has not arrived yet, is already certain to be refused: its request line
// is complete and malformed or not an upgradable GET, or it holds bytes no
// request line contains (a TLS hello, binary junk). The caller can then
// answer with Upgrade(dst, b) at once instead of waiting for a blank line
// that may never come.
func BadRequestStart(b []byte) bool {
	i := bytes.Index(b, crlf)
	if i < 0 {
		for j, c := range b {
			if (c < ' ' || c == 0x7f) && !(c == '\r' && j == len(b)-1) {
				return true
			}
		}
		return false
	}
	method, proto, ok := requestLine(b[:i])
	return !ok || !upgradable(method, proto)
}

// checkHead checks head (or the start of one) beyond what gobwas/ws does.
func checkHead(head []byte) headVerdict {
	i := bytes.Index(head, crlf)
	if i < 0 {
		i = len(head)
	}
	method, proto, ok := requestLine(head[:i])
	if !ok {
		return headBad
	}
	if !upgradable(method, proto) {
		// gobwas/ws answers 405 or 505 from the request line alone.
		return headOK
	}
	f := scanFields(head[min(i+2, len(head)):])
	if f.bad || f.hosts > 1 || f.keys > 1 {
		return headBad
	}
	if f.upgradeOK && !f.upgradeExact || f.connOK && !f.connEach {
		return headRewrite
	}
	return headOK
}

// fieldScan is what scanFields found in the fields of a head.
type fieldScan struct {
	bad                     bool // a field RFC 7230 section 3.2.4 forbids, or a bad Sec-WebSocket-Key
	hosts, keys, upgrades   int
	upgradeOK, upgradeExact bool
	connOK, connEach        bool
}

// scanFields checks the header fields of a head (everything after the
// request line) and counts those the upgrade depends on.
func scanFields(rest []byte) fieldScan {
	f := fieldScan{upgradeExact: true, connEach: true}
	for len(rest) > 0 {
		j := bytes.Index(rest, crlf)
		if j < 0 {
			j = len(rest)
		}
		line := rest[:j]
		rest = rest[min(j+2, len(rest)):]
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			f.bad = true // no field name, or obsolete line folding
			return f
		}
		name := line[:colon]
		for _, c := range name {
			if !isTchar(c) {
				f.bad = true // whitespace before the colon, or junk
				return f
			}
		}
		value := line[colon+1:]
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				f.bad = true
				return f
			}
		}
		value = bytes.Trim(value, " \t") // OWS
		switch {
		case bytes.EqualFold(name, nameHost):
			f.hosts++
		case bytes.EqualFold(name, nameKey):
			f.keys++
			// The length first: Decode panics on a value that decodes
			// to more than nonce holds.
			var nonce [18]byte
			if len(value) != 24 {
				f.bad = true
				return f
			}
			if n, err := base64.StdEncoding.Decode(nonce[:], value); err != nil || n != 16 {
				f.bad = true
				return f
			}
		case bytes.EqualFold(name, nameUpgrade):
			f.upgrades++
			listField(value, "websocket", &f.upgradeOK, &f.upgradeExact)
		case bytes.EqualFold(name, nameConnection):
			// Any value but the bare token is normalised: the list
			// scanner of gobwas/ws trips on some valid lists ("a ,\tb").
			listField(value, "upgrade", &f.connOK, &f.connEach)
		}
	}
	return f
}

// rewriteHead appends to dst a copy of a head checkHead found headRewrite,
// with every Upgrade field reduced to "websocket" and every Connection field
// to "Upgrade", which is what gobwas/ws checks them against.
func rewriteHead(dst, head []byte) []byte {
	i := bytes.Index(head, crlf)
	dst = append(dst, head[:i+2]...)
	rest := head[i+2:]
	for len(rest) > 0 {
		j := bytes.Index(rest, crlf)
		if j < 0 {
			return append(dst, rest...)
		}
		line := rest[:j+2]
		rest = rest[j+2:]
		colon := bytes.IndexByte(line, ':')
		switch {
		case colon > 0 && bytes.EqualFold(line[:colon], nameUpgrade):
			dst = append(append(dst, line[:colon+1]...), " websocket\r\n"...)
		case colon > 0 && bytes.EqualFold(line[:colon], nameConnection):
			dst = append(append(dst, line[:colon+1]...), " Upgrade\r\n"...)
		default:
			dst = append(dst, line...)
		}
	}
	return dst
}

// listField folds one Upgrade or Connection field into named (some field
// lists tok) and bare (every field is tok alone).
func listField(value []byte, tok string, named, bare *bool) {
	if asciiEqualFold(value, tok) {
		*named = true
		return
	}
	*bare = false
	*named = *named || hasToken(value, tok)
}
