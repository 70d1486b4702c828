package conn

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reserved slot indexes carried in epoll event data for the loop's own fds.
const (
	idxEventfd  = ^uint32(0)
	idxListener = ^uint32(0) - 1
)

// poller is one epoll instance plus the eventfd that wakes it.
type poller struct {
	epfd int
	efd  int
	rb   [8]byte // eventfd read scratch, loop-owned
}

func newPoller() (poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return poller{}, fmt.Errorf("conn: epoll_create1: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return poller{}, fmt.Errorf("conn: eventfd: %w", err)
	}
	p := poller{epfd: epfd, efd: efd}
	if err := p.add(efd, unix.EPOLLIN, idxEventfd, 0); err != nil {
		p.close()
		return poller{}, err
	}
	return p, nil
}

// event builds the epoll event whose data is the slot index and generation:
// the loop finds the connection from the event alone, without an fd map.
func event(events uint32, idx, gen uint32) unix.EpollEvent {
	return unix.EpollEvent{Events: events, Fd: int32(idx), Pad: int32(gen)}
}

func eventSlot(ev *unix.EpollEvent) (idx, gen uint32) {
	return uint32(ev.Fd), uint32(ev.Pad)
}

func (p *poller) add(fd int, events uint32, idx, gen uint32) error {
	ev := event(events, idx, gen)
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("conn: epoll add: %w", err)
	}
	return nil
}

func (p *poller) mod(fd int, events uint32, idx, gen uint32) error {
	ev := event(events, idx, gen)
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return fmt.Errorf("conn: epoll mod: %w", err)
	}
	return nil
}

func (p *poller) del(fd int) {
	_ = epollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// epollCtl is epoll_ctl(2) as a raw system call (it never blocks; see
// rawRead): one per accepted connection, and one per EPOLLOUT arm or disarm.
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// wait blocks up to msec milliseconds (-1 = forever) as an ordinary system
// call: the runtime may hand the loop's P to other goroutines meanwhile.
// A zero timeout never blocks, so it is made as a raw system call, like the
// socket I/O (see rawRead).
func (p *poller) wait(events []unix.EpollEvent, msec int) (int, error) {
	if msec == 0 {
		return p.waitRaw(events, 0)
	}
	n, err := unix.EpollWait(p.epfd, events, msec)
	if err == unix.EINTR {
		return 0, nil
	}
	return n, err
}

// waitRaw is epoll_pwait without the runtime's entersyscall/exitsyscall:
// the loop keeps its P while it blocks (see Loop.run for when that is
// allowed and how long it may last). A signal (a preemption request, a stop
// of the world for the garbage collector) ends the wait early with EINTR,
// reported as no events.
func (p *poller) waitRaw(events []unix.EpollEvent, msec int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		if e == unix.EINTR {
			return 0, nil
		}
		return 0, e
	}
	return int(r), nil
}

var eventOne = [8]byte{1}

// wake makes the next (or current) wait return. Safe from any goroutine.
func (p *poller) wake() {
	fdIO(unix.SYS_WRITE, p.efd, &eventOne)
}

// drainWake resets the eventfd counter after a wake-up.
func (p *poller) drainWake() {
	fdIO(unix.SYS_READ, p.efd, &p.rb)
}

func (p *poller) close() {
	unix.Close(p.efd)
	unix.Close(p.epfd)
}

// writev writes bufs with one system call. iov is scratch space owned by the
// caller, reused so that a flush allocates nothing. Raw, as rawRead says. A
// single buffer (the common flush: one reply) goes out with sendto, as
// rawWrite does.
func writev(fd int, iov []unix.Iovec) (int, error) {
	switch len(iov) {
	case 0:
		return 0, nil
	case 1:
		r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(iov[0].Base)), uintptr(iov[0].Len), unix.MSG_NOSIGNAL, 0, 0)
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawRead is recv(2) on a non-blocking socket, without the runtime's
// entersyscall/exitsyscall. Loops make hundreds of thousands of these calls
// a second, each a few microseconds of kernel work that never blocks: as
// ordinary system calls, a loopback write (10-20 µs on a virtual machine)
// outlives sysmon's 20 µs tick, so sysmon kept taking the loop's P away and
// woke every 20 µs to do it (measured: sysmon's wake-ups were 9 % of the
// server's CPU in a 10,000-connection broadcast). recvfrom and sendto go
// straight to the socket, where read(2) and write(2) pass through the file
// layer first (the file position lock, access checks).
func rawRead(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// rawWrite is send(2) on a non-blocking socket (see rawRead), with
// MSG_NOSIGNAL: a peer that reset gives EPIPE without a SIGPIPE.
func rawWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// fdIO is read(2) or write(2) of 8 bytes on the loop's eventfd (not a
// socket: recv and send do not apply).
func fdIO(trap uintptr, fd int, b *[8]byte) {
	_, _, _ = unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 8)
}
