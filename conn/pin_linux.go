package conn

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrCPUList is returned by ParseCPUList for a malformed list.
var ErrCPUList = errors.New("conn: bad CPU list")

// ParseCPUList parses a CPU list in the kernel's cpuset notation
// ("0-3,6,8-9"), as taskset -c and /sys/fs/cgroup/cpuset.cpus write it.
// The result is sorted and without repeats.
func ParseCPUList(s string) ([]int, error) {
	var set unix.CPUSet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= len(set)*64 {
			return nil, fmt.Errorf("%w: %q", ErrCPUList, part)
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	return cpusOf(&set), nil
}

// allowedCPUs is the CPUs this process may run on. In a container limited
// to a cpuset (say 4-7) these are not 0..NumCPU-1, and pinning to CPU i
// would fail; the i-th allowed CPU does not.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		if cpus := cpusOf(&set); len(cpus) > 0 {
			return cpus
		}
	}
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}

func cpusOf(set *unix.CPUSet) []int {
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// pinCPU is the CPU loop id is pinned to.
func pinCPU(cpus []int, id int) int { return cpus[id%len(cpus)] }
