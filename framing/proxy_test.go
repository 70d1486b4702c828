package framing

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func TestParseProxy(t *testing.T) {
	src4, dst4 := netip.MustParseAddrPort("127.0.0.7:40000"), netip.MustParseAddrPort("127.0.0.1:8080")
	src6, dst6 := netip.MustParseAddrPort("[2001:db8::7]:40001"), netip.MustParseAddrPort("[::1]:8080")
	v4 := AppendProxy(nil, src4, dst4)
	v6 := AppendProxy(nil, src6, dst6)
	local := AppendProxy(nil, netip.AddrPort{}, netip.AddrPort{})
	withTLV := append(append([]byte(nil), v4...), 0x04, 0, 3, 'a', 'b', 'c') // a NOOP TLV
	withTLV[15] += 6
	http := []byte("GET /ws HTTP/1.1\r\n")
	cases := []struct {
		name string
		b    []byte
		n    int
		src  netip.AddrPort
		err  error
	}{
		{"v4", v4, 28, src4, nil},
		{"v4 with the request after it", append(append([]byte(nil), v4...), http...), 28, src4, nil},
		{"v6", v6, 52, src6, nil},
		{"local", local, 16, netip.AddrPort{}, nil},
		{"TLV skipped", withTLV, 34, src4, nil},
		{"empty", nil, 0, netip.AddrPort{}, nil},
		{"signature prefix", v4[:5], 0, netip.AddrPort{}, nil},
		{"fixed part only", v4[:16], 0, netip.AddrPort{}, nil},
		{"address block cut", v4[:27], 0, netip.AddrPort{}, nil},
		{"plain HTTP", http, 0, netip.AddrPort{}, ErrProxyHeader},
		{"v1 text", []byte("PROXY TCP4 127.0.0.7 127.0.0.1 40000 8080\r\n"), 0, netip.AddrPort{}, ErrProxyHeader},
		{"TLS hello", []byte{0x16, 3, 1, 0, 0xa5}, 0, netip.AddrPort{}, ErrProxyHeader},
		{"version 1 in the binary form", patch(v4, 12, 0x11), 0, netip.AddrPort{}, ErrProxyHeader},
		{"unknown command", patch(v4, 12, 0x22), 0, netip.AddrPort{}, ErrProxyHeader},
		{"UDP", patch(v4, 13, 0x12), 0, netip.AddrPort{}, ErrProxyHeader},
		{"unknown family", patch(v4, 13, 0x41), 0, netip.AddrPort{}, ErrProxyHeader},
		{"length below the v4 block", patch(v4, 15, 11), 0, netip.AddrPort{}, ErrProxyHeader},
		{"over the limit", patch(v4, 14, 0x10), 0, netip.AddrPort{}, ErrProxyTooLarge},
	}
	for _, c := range cases {
		n, info, err := ParseProxy(c.b, 4096)
		if n != c.n || info.Source != c.src || !errors.Is(err, c.err) {
			t.Errorf("%s: ParseProxy = %d, %v, %v; want %d, %v, %v", c.name, n, info.Source, err, c.n, c.src, c.err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = ParseProxy(v6, 4096) }); n != 0 {
		t.Errorf("%v allocations per parse", n)
	}
}

func patch(b []byte, i int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[i] = v
	return c
}

// FuzzParseProxy: never panics, never claims more than it has or than the
// limit, and parsing is prefix-stable: every prefix of an accepted header is
// "need more", and every extension of an accepted input parses the same.
func FuzzParseProxy(f *testing.F) {
	f.Add(AppendProxy(nil, netip.MustParseAddrPort("127.0.0.7:1"), netip.MustParseAddrPort("127.0.0.1:2")))
	f.Add(AppendProxy(nil, netip.MustParseAddrPort("[::7]:1"), netip.MustParseAddrPort("[::1]:2")))
	f.Add(AppendProxy(nil, netip.AddrPort{}, netip.AddrPort{}))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte(proxySig + "\x21\x31\x00\xd8"))
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 512
		n, info, err := ParseProxy(b, max)
		if n < 0 || n > len(b) || n > max {
			t.Fatalf("n = %d of %d", n, len(b))
		}
		if err != nil && n != 0 {
			t.Fatalf("n = %d with %v", n, err)
		}
		if n == 0 {
			return
		}
		for k := 0; k < n; k++ {
			if m, _, err := ParseProxy(b[:k], max); m != 0 || err != nil {
				t.Fatalf("prefix %d of an accepted %d-byte header: %d, %v", k, n, m, err)
			}
		}
		m, info2, err := ParseProxy(append(bytes.Clone(b), "trailing"...), max)
		if m != n || info2 != info || err != nil {
			t.Fatalf("with bytes after it: %d %v %v, want %d %v", m, info2, err, n, info)
		}
	})
}
