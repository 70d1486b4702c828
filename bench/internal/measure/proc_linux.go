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
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, ErrProcStat
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return s, ErrProcStat
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return s, ErrProcStat
	}
	s.CPUSeconds = float64(ut+st) / clockTicks
	statm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return s, err
	}
	g := bytes.Fields(statm)
	if len(g) < 2 {
		return s, ErrProcStat
	}
	pages, err := strconv.ParseInt(string(g[1]), 10, 64)
	if err != nil {
		return s, ErrProcStat
	}
	s.RSSBytes = pages * int64(os.Getpagesize())
	return s, nil
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
