package measure

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat CPU times; it is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// ErrProcStat is returned when /proc/PID/stat cannot be parsed.
var ErrProcStat = errors.New("measure: unexpected /proc stat format")

// ProcSample is one reading of a process's resource use.
type ProcSample struct {
	At         time.Time
	RSSBytes   int64   // resident set size
	CPUSeconds float64 // user + system CPU consumed since the process started
}

// SampleProc reads RSS and CPU time of pid from /proc.
func SampleProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, err
	}
	if s.CPUSeconds, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	statm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return s, err
	}
	s.RSSBytes, err = parseStatmRSS(statm, int64(os.Getpagesize()))
	return s, err
}

// parseStatCPU returns utime + stime of a /proc/PID/stat line in seconds.
func parseStatCPU(stat []byte) (float64, error) {
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, ErrProcStat
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, ErrProcStat
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, ErrProcStat
	}
	return float64(ut+st) / clockTicks, nil
}

// parseStatmRSS returns the resident set of a /proc/PID/statm line in
// bytes: statm counts pages, not kB.
func parseStatmRSS(statm []byte, pageSize int64) (int64, error) {
	g := bytes.Fields(statm)
	if len(g) < 2 {
		return 0, ErrProcStat
	}
	pages, err := strconv.ParseInt(string(g[1]), 10, 64)
	if err != nil {
		return 0, ErrProcStat
	}
	return pages * pageSize, nil
}

// PeakRSS returns the highest resident set size pid has had (VmHWM in
// /proc/PID/status, kept by the kernel), in bytes: a peak between two
// samples is not missed.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseMeminfo(b, "VmHWM")
}

// SelfCPU is the CPU time (user + system) this process has used.
func SelfCPU() float64 { return rusage(syscall.RUSAGE_SELF) }

// ChildrenCPU is the CPU time used by waited-for child processes.
func ChildrenCPU() float64 { return rusage(syscall.RUSAGE_CHILDREN) }

func rusage(who int) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// KernelSlab returns the kernel's slab memory (Slab in /proc/meminfo) in
// bytes: where socket structures live. On loopback both ends of every
// connection are on this machine.
func KernelSlab() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return parseMeminfo(b, "Slab")
}

// parseMeminfo returns field key of /proc/meminfo ("Slab:  123 kB") in bytes.
func parseMeminfo(b []byte, key string) (int64, error) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(name) != key {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, ErrProcStat
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, ErrProcStat
		}
		if len(f) > 1 && string(f[1]) == "kB" {
			n <<= 10
		}
		return n, nil
	}
	return 0, ErrProcStat
}
