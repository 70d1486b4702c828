package conn

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// DialOptions describes a client connection (load generator).
type DialOptions struct {
	Addr      string      // server "host:port"
	LocalAddr string      // source "ip" or "ip:port"; "" = any. Many 127.0.0.0/8 sources multiply the ports available
	Host      string      // Host header; "" = Addr
	Path      string      // request target with query; "" = "/"
	Header    [][2]string // extra request headers
	Deflate   bool        // offer permessage-deflate
	Tag       uint32      // application tag stored in the slot
	Loop      int         // loop to run on; -1 = round robin
	// MaxMessage bounds inbound messages on this connection; 0 =
	// Config.MaxMessage.
	MaxMessage int
}

// Dial opens a client connection from any goroutine. It returns at once:
// the connect and the handshake run on the loop, which then calls OnOpen,
// or OnClose(1006, err) if either fails. An error here means the options
// were unusable or the node is closed (ErrNodeClosed), and nothing was
// started; a Dial that returned nil always ends in OnClose, also when
// Node.Close overtakes it.
func (n *Node) Dial(o DialOptions) error {
	ra, err := net.ResolveTCPAddr("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("conn: dial address %q: %w", o.Addr, err)
	}
	rsa := tcpToSockaddr(ra)
	var lsa unix.Sockaddr
	if o.LocalAddr != "" {
		la := o.LocalAddr
		if _, _, err := net.SplitHostPort(la); err != nil {
			la = net.JoinHostPort(la, "0")
		}
		lta, err := net.ResolveTCPAddr("tcp", la)
		if err != nil {
			return fmt.Errorf("conn: dial local address %q: %w", o.LocalAddr, err)
		}
		lsa = tcpToSockaddr(lta)
	}
	host, path := o.Host, o.Path
	if host == "" {
		host = o.Addr
	}
	if path == "" {
		path = "/"
	}
	if err := checkRequest(host, path, o.Header); err != nil {
		return err
	}
	key := framing.NewClientKey()
	req := framing.AppendClientRequest(nil, host, path, key, o.Deflate, o.Header)
	maxMsg := o.MaxMessage
	if maxMsg <= 0 {
		maxMsg = n.cfg.MaxMessage
	}
	loop := o.Loop
	if loop < 0 {
		loop = int(n.next.Add(1) - 1)
	}
	tag, offer := o.Tag, o.Deflate
	if !n.loops[uint(loop)%uint(len(n.loops))].inbox.push(func(l *Loop) { l.dial(rsa, lsa, req, key, tag, maxMsg, offer) }) {
		return ErrNodeClosed
	}
	return nil
}

// checkRequest refuses request parts that would break the request head:
// a line break in any of them would end a header (or the head) early and
// inject what follows, a space in the path would end the request target.
func checkRequest(host, path string, header [][2]string) error {
	if strings.ContainsAny(host, "\r\n\x00") {
		return fmt.Errorf("conn: dial host %q: control character", host)
	}
	if strings.ContainsAny(path, " \r\n\x00") {
		return fmt.Errorf("conn: dial path %q: space or control character", path)
	}
	for _, h := range header {
		if h[0] == "" || strings.ContainsAny(h[0], ": \r\n\x00") || strings.ContainsAny(h[1], "\r\n\x00") {
			return fmt.Errorf("conn: dial header %q: bad name or control character", h[0])
		}
	}
	return nil
}

// dial starts a non-blocking connect; connected continues when the socket
// becomes writable.
func (l *Loop) dial(rsa, lsa unix.Sockaddr, req []byte, key [24]byte, tag uint32, maxMsg int, offerDeflate bool) {
	idx := l.slots.alloc()
	s := l.slots.at(idx)
	s.state = stDialing
	s.flags = fClient | fNotify
	if offerDeflate {
		s.flags |= fOffered
	}
	s.tag = tag
	s.maxMsg = uint32(maxMsg)
	s.stamp = l.now
	s.lastRead = l.now
	l.stats.conns.Add(1)
	if l.stop.Load() {
		// Posted before the node closed: no socket, just the owed OnClose.
		l.kill(idx, framing.StatusAbnormal, ErrNodeClosed)
		return
	}
	fail := func(what string, err error) {
		l.kill(idx, framing.StatusAbnormal, fmt.Errorf("conn: %s: %w", what, err))
	}
	fd, err := unix.Socket(family(rsa), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		fail("socket", err)
		return
	}
	l.n.open.Add(1)
	s.fd = int32(fd)
	if lsa != nil {
		// Let connect pick the port per destination, so one source address
		// is not limited to one ephemeral range across all servers.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, lsa); err != nil {
			fail("bind", err)
			return
		}
	}
	tuneConn(fd)
	// EINTR and EALREADY leave the connect going on asynchronously, as
	// EINPROGRESS does: the socket reports its outcome when writable.
	if err := unix.Connect(fd, rsa); err != nil && err != unix.EINPROGRESS && err != unix.EINTR && err != unix.EALREADY {
		fail("connect", err)
		return
	}
	s.hs = l.hss.alloc()
	hb := l.hss.at(s.hs)
	hb.buf = append(hb.buf[:0], req...)
	hb.key = key
	if err := l.poll.add(fd, unix.EPOLLOUT|unix.EPOLLIN|unix.EPOLLRDHUP, idx, s.gen); err != nil {
		fail("epoll", err)
		return
	}
	l.armTimer(idx, l.now+int64(l.cfg.HandshakeTimeout))
}

// connected sends the upgrade request once the connect has finished.
func (l *Loop) connected(idx uint32) {
	s := l.slots.at(idx)
	if errno, err := unix.GetsockoptInt(int(s.fd), unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
		if err == nil {
			err = unix.Errno(errno)
		}
		l.closeSlot(idx, framing.StatusAbnormal, fmt.Errorf("conn: connect: %w", err))
		return
	}
	hb := l.hss.at(s.hs)
	n, err := rawWrite(int(s.fd), hb.buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil {
		l.closeSlot(idx, framing.StatusAbnormal, fmt.Errorf("conn: sending handshake: %w", err))
		return
	}
	if n < len(hb.buf) {
		hb.buf = hb.buf[:copy(hb.buf, hb.buf[n:])]
		return // the rest goes when the socket is writable again
	}
	hb.buf = hb.buf[:0]
	s.state = stClientHS
	if err := l.poll.mod(int(s.fd), unix.EPOLLIN|unix.EPOLLRDHUP, idx, s.gen); err != nil {
		l.closeSlot(idx, framing.StatusAbnormal, err)
	}
}
