package conn

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// listenBacklog is the accept queue length asked of the kernel (capped by
// net.core.somaxconn).
const listenBacklog = 4096

// resolveListen turns "host:port" into a socket address. An empty host
// listens on all IPv4 addresses.
func resolveListen(addr string) (unix.Sockaddr, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("conn: listen address %q: %w", addr, err)
	}
	return tcpToSockaddr(ta), nil
}

func tcpToSockaddr(ta *net.TCPAddr) unix.Sockaddr {
	if ip4 := ta.IP.To4(); ip4 != nil || ta.IP == nil {
		sa := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		return sa
	}
	sa := &unix.SockaddrInet6{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To16())
	return sa
}

func sockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	}
	return nil
}

// cloneSockaddr copies sa: unix.Sockaddr values carry scratch space that
// each system call writes, so loops must not share one.
func cloneSockaddr(sa unix.Sockaddr) unix.Sockaddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &unix.SockaddrInet4{Port: a.Port, Addr: a.Addr}
	case *unix.SockaddrInet6:
		return &unix.SockaddrInet6{Port: a.Port, ZoneId: a.ZoneId, Addr: a.Addr}
	}
	return sa
}

func family(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// listen opens a non-blocking SO_REUSEPORT listening socket on sa and returns
// it with the address actually bound (the port filled in if sa had port 0).
func listen(sa unix.Sockaddr) (int, unix.Sockaddr, error) {
	sa = cloneSockaddr(sa)
	fd, err := unix.Socket(family(sa), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, nil, fmt.Errorf("conn: socket: %w", err)
	}
	fail := func(what string, err error) (int, unix.Sockaddr, error) {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("conn: %s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("SO_REUSEADDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("SO_REUSEPORT", err)
	}
	// Linux copies TCP_NODELAY from the listener into every socket it
	// accepts, so accepted connections need no setsockopt of their own.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fail("TCP_NODELAY", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return fail("listen", err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return fd, bound, nil
}

// accept takes one pending connection, non-blocking and close-on-exec. The
// peer address is not asked for: unix.Accept4 would allocate a Sockaddr per
// connection, garbage that a burst of thousands of accepts turns into heap.
func accept(lfd int) (int, error) {
	for {
		// Raw, as rawRead says: accept4 on a non-blocking listener never
		// blocks.
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// tuneConn sets per-connection socket options of a dialed connection: Nagle
// off, since writes are already batched per loop pass. (Accepted ones
// inherit it from the listener.)
func tuneConn(fd int) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}
