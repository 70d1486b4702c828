package framing

import "bytes"

// A player port may also answer a few plain HTTP requests (a page, a script)
// without weakening the upgrade path: only a request that could never be an
// upgrade (GET or HEAD over HTTP/1.1 with no Upgrade field at all) and that
// passes the same field checks as an upgrade request is plain. Anything that
// asks for an upgrade, well-formed or not, still goes to Upgrade.

// PlainRequest reports whether head, a complete request head (as delimited
// by RequestEnd), is a plain GET or HEAD over HTTP/1.1 without an Upgrade
// field, with fields as strict as an upgrade request's (RFC 7230 section
// 3.2.4; at most one Host). path is the request target without its query,
// valid as long as head is; isHead is true for HEAD.
func PlainRequest(head []byte) (path []byte, isHead, ok bool) {
	i := bytes.Index(head, crlf)
	if i < 0 {
		return nil, false, false
	}
	method, proto, ok := requestLine(head[:i])
	if !ok || !plainLine(method, proto) {
		return nil, false, false
	}
	f := scanFields(head[i+2:])
	if f.bad || f.hosts > 1 || f.keys > 1 || f.upgrades > 0 {
		return nil, false, false
	}
	target := head[len(method)+1 : i-len(proto)-1]
	if len(target) == 0 || target[0] != '/' {
		return nil, false, false
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	return target, string(method) == "HEAD", true
}

// PlainRequestStart reports whether b starts with a complete, well-formed
// GET or HEAD request line over HTTP/1.1: a request that may still turn out
// to be plain (see PlainRequest) once its head is complete, so a caller that
// serves plain requests does not answer it early although BadRequestStart
// holds for HEAD.
func PlainRequestStart(b []byte) bool {
	i := bytes.Index(b, crlf)
	if i < 0 {
		return false
	}
	method, proto, ok := requestLine(b[:i])
	return ok && plainLine(method, proto)
}

func plainLine(method, proto []byte) bool {
	return (string(method) == "GET" || string(method) == "HEAD") && string(proto) == "HTTP/1.1"
}
