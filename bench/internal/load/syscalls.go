package load

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// syscallNames are the system calls counted one by one with --syscalls:
// the data path (socket reads and writes, epoll) of an event-loop server and
// of a goroutine-per-connection one, and what the Go runtime adds around
// blocking waits (futex hand-offs, sysmon's sleeps, preemption signals).
// Everything else is counted in the total only.
var syscallNames = []string{
	"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
	"epoll_wait", "epoll_pwait", "epoll_ctl", "accept4", "close",
	"futex", "nanosleep", "clock_nanosleep", "sched_yield",
	"tgkill", "getpid", "rt_sigreturn", "mmap", "munmap", "madvise",
}

// syscallCounter counts the system calls of server processes with perf
// stat on the kernel's syscall tracepoints: a count per call, taken in the
// kernel, that costs the traced process far less than ptrace (strace -c).
type syscallCounter struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startSyscalls attaches perf stat to every thread of pids.
func startSyscalls(pids []int) (*syscallCounter, error) {
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	args := []string{"stat", "-x,", "-e", "raw_syscalls:sys_enter"}
	for _, n := range syscallNames {
		args = append(args, "-e", "syscalls:sys_enter_"+n)
	}
	args = append(args, "-p", strings.Join(ps, ","))
	c := &syscallCounter{cmd: exec.Command("perf", args...)}
	c.cmd.Stderr = &c.out // perf stat writes its counts to stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("load: perf stat: %w", err)
	}
	return c, nil
}

// stop ends the count and returns the total and the per-name counts.
func (c *syscallCounter) stop() (int64, map[string]int64, error) {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	err := c.cmd.Wait()
	total, by := parsePerfStat(c.out.Bytes())
	if total == 0 && err != nil {
		return 0, nil, fmt.Errorf("load: perf stat: %w: %s", err, strings.TrimSpace(c.out.String()))
	}
	return total, by, nil
}

// parsePerfStat reads perf stat -x, output: "count,unit,event,...".
func parsePerfStat(b []byte) (int64, map[string]int64) {
	var total int64
	by := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) < 3 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch ev := f[2]; {
		case ev == "raw_syscalls:sys_enter":
			total = n
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			if n > 0 {
				by[strings.TrimPrefix(ev, "syscalls:sys_enter_")] = n
			}
		}
	}
	return total, by
}
