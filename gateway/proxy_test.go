package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/framing"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, in one PEM
// file as haproxy wants them, and returns the file and a pool trusting it.
func selfSigned(t *testing.T, dir string) (string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "huntgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	file := filepath.Join(dir, "huntgate.pem")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return file, pool
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A player connecting over wss:// through a real haproxy running
// deploy/haproxy.cfg (TLS terminated there, the client address passed with
// PROXY protocol v2) plays as usual, and the gateway sees the player's own
// address (a client bound to 127.0.0.7), not the proxy's; a connection that
// reaches the gateway without the header is dropped unanswered.
func TestHAProxyTLSProxyProtocol(t *testing.T) {
	hp, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("HUNTGATE_REQUIRE_HAPROXY") != "" {
			t.Fatal("haproxy is not installed")
		}
		t.Skip("haproxy is not installed (scripts/test.sh installs it)")
	}
	logs := &syncBuffer{}
	tg := startGateway(t, func(c *Config) {
		c.ProxyProtocol = true
		c.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	tg.createHunt(t, fixedHunt("h", 1))

	dir := t.TempDir()
	certFile, pool := selfSigned(t, dir)
	port := freePort(t)
	_, adminPort, _ := net.SplitHostPort(tg.AdminAddr().String())
	node := tg.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, hp, "-db", "-f", "../deploy/haproxy.cfg")
	cmd.Env = append(os.Environ(),
		"HUNTGATE_TLS_BIND=127.0.0.1:"+strconv.Itoa(port),
		"HUNTGATE_TLS_CERT="+certFile,
		"HUNTGATE_NODE1="+node, "HUNTGATE_NODE2="+node, "HUNTGATE_NODE3="+node,
		"HUNTGATE_ADMIN_PORT="+adminPort,
		"HUNTGATE_MAXCONN=1000",
	)
	var hlog syncBuffer
	cmd.Stdout, cmd.Stderr = &hlog, &hlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s\ngateway:\n%s", hlog.String(), logs.String())
		}
	})

	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}
	d := websocket.Dialer{
		TLSClientConfig:  &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
		NetDial:          (&net.Dialer{LocalAddr: local}).Dial,
		HandshakeTimeout: 5 * time.Second,
	}
	url := "wss://127.0.0.1:" + strconv.Itoa(port) + "/ws?player=alice"
	var c *websocket.Conn
	waitFor(t, "haproxy to serve", func() bool {
		var err error
		c, _, err = d.Dial(url, nil)
		return err == nil
	})
	defer c.Close()
	alice := &client{t: t, c: c}
	alice.join("h")
	alice.send(`{"op":"dig","hunt":"h","x":0,"y":0}`)
	if m := alice.until("dug"); m["found"] != true {
		t.Fatalf("dug %v", m)
	}

	// The gateway logged the player's address: 127.0.0.7 and the port the
	// client used towards haproxy.
	want := `"client":"` + c.LocalAddr().(*net.TCPAddr).AddrPort().String() + `"`
	if !strings.HasPrefix(c.LocalAddr().String(), "127.0.0.7:") {
		t.Fatalf("the client is bound to %v", c.LocalAddr())
	}
	waitFor(t, "the gateway's log of the player", func() bool {
		return strings.Contains(logs.String(), `"player":"alice",`+want)
	})

	// Straight to the gateway, without a PROXY header: no answer, closed.
	raw, err := net.Dial("tcp", node)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = raw.Write([]byte("GET /ws?player=bob HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := raw.Read(make([]byte, 64)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("a connection without the header read %d bytes, %v; want it closed unanswered", n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A PROXY header that arrives in pieces, then the request head in pieces,
// is put together; the address it carries (v4 or v6) is the one the
// gateway logs; a LOCAL header (a proxy's own check) leaves the socket's
// address.
func TestProxyProtocolInPieces(t *testing.T) {
	logs := &syncBuffer{}
	tg := startGateway(t, func(c *Config) {
		c.ProxyProtocol = true
		c.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	head := "GET /ws?player=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	dst := netip.MustParseAddrPort(tg.Addr().String())
	for _, tc := range []struct {
		player, src string
		local       bool
	}{
		{"v4", "192.0.2.7:40001", false},
		{"v6", "[2001:db8::7]:40002", false},
		{"local", "", true},
	} {
		var hdr []byte
		if tc.local {
			hdr = framing.AppendProxy(nil, netip.AddrPort{}, netip.AddrPort{})
		} else {
			hdr = framing.AppendProxy(nil, netip.MustParseAddrPort(tc.src), dst)
		}
		msg := append(hdr, strings.Replace(head, "%s", tc.player, 1)...)
		c, err := net.Dial("tcp", tg.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Three pieces: inside the fixed part, inside the address block,
		// inside the request head.
		for _, cut := range [][2]int{{0, 7}, {7, 20}, {20, len(hdr) + 10}, {len(hdr) + 10, len(msg)}} {
			if _, err := c.Write(msg[cut[0]:cut[1]]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // separate reads on the server (not a synchronisation)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 12)
		if _, err := c.Read(b); err != nil || string(b) != "HTTP/1.1 101" {
			t.Fatalf("%s: %q %v", tc.player, b, err)
		}
		want := tc.src
		if tc.local {
			want = c.LocalAddr().(*net.TCPAddr).AddrPort().String()
		}
		waitFor(t, tc.player+"'s log line", func() bool {
			return strings.Contains(logs.String(), `"player":"`+tc.player+`","client":"`+want+`"`)
		})
		c.Close()
	}
}
