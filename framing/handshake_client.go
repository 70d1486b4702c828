package framing

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
)

// Errors returned by CheckClientResponse.
var (
	// ErrBadResponse is a response head that is not a valid upgrade answer.
	ErrBadResponse = errors.New("framing: malformed handshake response")
	// ErrBadStatus is a response with a status other than 101.
	ErrBadStatus = errors.New("framing: handshake refused")
	// ErrBadAccept is a missing or wrong Sec-WebSocket-Accept.
	ErrBadAccept = errors.New("framing: bad Sec-WebSocket-Accept")
	// ErrBadExtension is an extension the client cannot run: anything but
	// permessage-deflate with server_no_context_takeover.
	ErrBadExtension = errors.New("framing: unsupported extension in response")
)

// acceptGUID is the fixed string of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// NewClientKey returns a fresh Sec-WebSocket-Key: RFC 6455 section 4.1
// wants "a randomly selected 16-byte value that has been base64-encoded".
func NewClientKey() [24]byte {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails since Go 1.24
	var k [24]byte
	base64.StdEncoding.Encode(k[:], raw[:])
	return k
}

// acceptKey returns the Sec-WebSocket-Accept value expected for key.
func acceptKey(key []byte) [28]byte {
	var buf [24 + len(acceptGUID)]byte
	n := copy(buf[:], key)
	n += copy(buf[n:], acceptGUID)
	sum := sha1.Sum(buf[:n])
	var out [28]byte
	base64.StdEncoding.Encode(out[:], sum[:])
	return out
}

// deflateHeader is both the client's offer and the server's acceptance of
// permessage-deflate without context takeover in both directions, which is
// the only form Inflater and Deflater run.
const deflateHeader = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"

// deflateHeaderWindow is the server's acceptance of an offer that named
// server_max_window_bits=15.
const deflateHeaderWindow = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15\r\n"

// AppendClientRequest appends an RFC 6455 opening handshake request for
// path (with its query) on host to dst and returns the extended slice. extra
// headers are written as given, after the WebSocket ones.
func AppendClientRequest(dst []byte, host, path string, key [24]byte, deflate bool, extra [][2]string) []byte {
	if path == "" {
		path = "/"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key[:]...)
	dst = append(dst, "\r\n"...)
	if deflate {
		dst = append(dst, deflateHeader...)
	}
	for _, h := range extra {
		dst = append(dst, h[0]...)
		dst = append(dst, ": "...)
		dst = append(dst, h[1]...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// CheckClientResponse validates the server's response head (through the
// blank line, see RequestEnd) to a request sent with key, as RFC 6455 section
// 4.1 requires of a client: status 101, "Upgrade: websocket", a Connection
// header with the "Upgrade" token and the Sec-WebSocket-Accept derived from
// key. res.Status is the response status even when err is not nil;
// res.Deflate is true if the server accepted permessage-deflate (with
// server_no_context_takeover, as offered). The request is not seen here: a
// caller that did not offer deflate must itself refuse a response with
// res.Deflate set (section 4.1: an extension "not present in the client's
// handshake" fails the connection).
func CheckClientResponse(head []byte, key [24]byte) (res UpgradeResult, err error) {
	line, rest := cutLine(head)
	res.Status = responseStatus(line)
	if res.Status == 0 {
		return res, ErrBadResponse
	}
	if res.Status != 101 {
		return res, ErrBadStatus
	}
	var upgrade, connection, accepted bool
	want := acceptKey(key[:])
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return res, ErrBadResponse
		}
		k, v := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case asciiEqualFold(k, "Upgrade"):
			upgrade = asciiEqualFold(v, "websocket")
		case asciiEqualFold(k, "Connection"):
			connection = hasToken(v, "upgrade")
		case asciiEqualFold(k, "Sec-WebSocket-Accept"):
			if string(v) != string(want[:]) {
				return res, ErrBadAccept
			}
			accepted = true
		case asciiEqualFold(k, "Sec-WebSocket-Extensions"):
			ok, deflate := checkExtensions(v)
			if !ok {
				return res, ErrBadExtension
			}
			res.Deflate = res.Deflate || deflate
		}
	}
	switch {
	case !upgrade || !connection:
		return res, ErrBadResponse
	case !accepted:
		return res, ErrBadAccept
	}
	return res, nil
}

// checkExtensions accepts only permessage-deflate with
// server_no_context_takeover: every message from the server must then be
// decodable on its own.
func checkExtensions(v []byte) (ok, deflate bool) {
	for _, ext := range bytes.Split(v, []byte(",")) {
		params := bytes.Split(ext, []byte(";"))
		if !asciiEqualFold(bytes.TrimSpace(params[0]), "permessage-deflate") || deflate {
			return false, false
		}
		noCtx := false
		for _, p := range params[1:] {
			p = bytes.TrimSpace(p)
			switch {
			case asciiEqualFold(p, "server_no_context_takeover"):
				noCtx = true
			case asciiEqualFold(p, "client_no_context_takeover"):
			default:
				// Window limits would constrain the compressor, which
				// compress/flate cannot honour.
				return false, false
			}
		}
		if !noCtx {
			return false, false
		}
		deflate = true
	}
	return true, deflate
}

func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasToken reports whether the comma-separated list v holds token,
// compared case-insensitively.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if asciiEqualFold(bytes.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
