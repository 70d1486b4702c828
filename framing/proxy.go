package framing

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// PROXY protocol version 2 (the binary header haproxy sends with
// send-proxy-v2), as a proxy in front of the gateway uses it to pass the
// client's address: a 16-byte header (signature, version and command,
// address family and protocol, length) and an address block, sent before
// anything else on the connection.
//
// It is parsed here from the loop's read buffer, like the HTTP head that
// follows it: pires/go-proxyproto, the maintained Go implementation, reads
// through a bufio.Reader wrapped around a blocking net.Conn and allocates a
// Header per connection, which does not fit an event loop that parses
// whatever bytes have arrived and comes back when more do. The format is
// small and fixed, so it is written out here and fuzzed (FuzzParseProxy).

// proxySig is the v2 signature.
const proxySig = "\r\n\r\n\x00\r\nQUIT\n"

// ProxyHeaderLen is the fixed part of a v2 header.
const ProxyHeaderLen = 16

// Errors of ParseProxy. The connection is to be dropped without an answer.
var (
	ErrProxyHeader   = errors.New("framing: no valid PROXY protocol v2 header")
	ErrProxyTooLarge = errors.New("framing: PROXY protocol header over the limit")
)

// ProxyInfo is what a PROXY header says.
type ProxyInfo struct {
	// Source is the client's address; invalid for a LOCAL command (the
	// proxy's own connection, a health check) or an address family we do
	// not read (AF_UNSPEC, AF_UNIX): the socket's peer address stands then.
	Source netip.AddrPort
}

// ParseProxy parses a PROXY protocol v2 header at the start of b. It returns
// the header's length n and what it says once b holds all of it; n == 0 with
// a nil error means b is a valid beginning and more bytes are needed. A
// header longer than max bytes (its address block and TLVs included) is
// ErrProxyTooLarge; anything else that is not a v2 header (a v1 text header
// included) is ErrProxyHeader. TLVs are skipped. It does not allocate.
func ParseProxy(b []byte, max int) (n int, info ProxyInfo, err error) {
	m := min(len(b), len(proxySig))
	if string(b[:m]) != proxySig[:m] {
		return 0, info, ErrProxyHeader
	}
	if len(b) < ProxyHeaderLen {
		return 0, info, nil
	}
	verCmd, famProto := b[12], b[13]
	if verCmd>>4 != 2 {
		return 0, info, ErrProxyHeader
	}
	cmd := verCmd & 0x0f
	if cmd > 1 { // 0 LOCAL, 1 PROXY
		return 0, info, ErrProxyHeader
	}
	size := ProxyHeaderLen + int(binary.BigEndian.Uint16(b[14:16]))
	if size > max {
		return 0, info, ErrProxyTooLarge
	}
	fam, proto := famProto>>4, famProto&0x0f
	if fam > 3 || proto > 2 {
		return 0, info, ErrProxyHeader
	}
	// The address block must fit in the announced length.
	var need int
	switch fam {
	case 1:
		need = 12
	case 2:
		need = 36
	case 3:
		need = 216
	}
	if size-ProxyHeaderLen < need {
		return 0, info, ErrProxyHeader
	}
	if len(b) < size {
		return 0, info, nil
	}
	if cmd == 0 {
		return size, info, nil // LOCAL: the proxy speaks for itself
	}
	if proto != 1 && fam != 0 {
		// Only a stream (TCP) connection can carry a WebSocket.
		return 0, info, ErrProxyHeader
	}
	a := b[ProxyHeaderLen:size]
	switch fam {
	case 1:
		ip := netip.AddrFrom4([4]byte(a[0:4]))
		info.Source = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(a[8:10]))
	case 2:
		ip := netip.AddrFrom16([16]byte(a[0:16]))
		info.Source = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(a[32:34]))
	}
	return size, info, nil
}

// AppendProxy appends a v2 PROXY header for a TCP connection from src to dst
// (both IPv4 or both IPv6), or a LOCAL header if src is invalid: what a
// proxy sends; for tests and tools.
func AppendProxy(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, proxySig...)
	if !src.IsValid() {
		return append(b, 0x20, 0x00, 0, 0)
	}
	if src.Addr().Is4() && dst.Addr().Is4() {
		b = append(b, 0x21, 0x11, 0, 12)
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		b = append(b, 0x21, 0x21, 0, 36)
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}
