package conn

import (
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

func TestParseCPUList(t *testing.T) {
	good := map[string][]int{
		"0":         {0},
		"0-3,6":     {0, 1, 2, 3, 6},
		"2,1,2":     {1, 2},
		" 4-5 , 7 ": {4, 5, 7},
	}
	for in, want := range good {
		got, err := ParseCPUList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "3-1", "-1", "1-", "0-5000", "1,,2"} {
		if got, err := ParseCPUList(in); !errors.Is(err, ErrCPUList) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want ErrCPUList", in, got, err)
		}
	}
}

// TestPinnedLoopsRunOnTheirCPU reads each pinned loop's affinity on the loop
// itself: loop i runs on the i-th CPU the process may use (or of Config.CPUs),
// never on a CPU outside that set.
func TestPinnedLoopsRunOnTheirCPU(t *testing.T) {
	allowed := allowedCPUs()
	var mask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mask); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(allowed, cpusOf(&mask)) {
		t.Fatalf("allowedCPUs %v, affinity mask %v", allowed, cpusOf(&mask))
	}
	last := allowed[len(allowed)-1]
	for _, tc := range []struct {
		name   string
		cpus   []int
		narrow bool // create the node on a thread allowed only CPU last
		want   func(id int) int
	}{
		{"process mask", nil, false, func(id int) int { return allowed[id%len(allowed)] }},
		{"given set", []int{last}, false, func(int) int { return last }},
		// As in a container on a cpuset that does not start at CPU 0.
		{"narrowed mask", nil, true, func(int) int { return last }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.narrow && last == 0 {
				t.Skip("one CPU: no mask to narrow")
			}
			const loops = 3
			n, err := newNodeOn(tc.narrow, last, Config{Loops: loops, Pin: true, CPUs: tc.cpus, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Start(); err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			got := make(chan [2]int, loops)
			for i := 0; i < loops; i++ {
				n.Post(i, func(l *Loop) {
					var set unix.CPUSet
					if err := unix.SchedGetaffinity(0, &set); err != nil {
						got <- [2]int{l.ID(), -1}
						return
					}
					cpus := cpusOf(&set)
					if len(cpus) != 1 {
						got <- [2]int{l.ID(), -len(cpus)}
						return
					}
					got <- [2]int{l.ID(), cpus[0]}
				})
			}
			for i := 0; i < loops; i++ {
				select {
				case r := <-got:
					if want := tc.want(r[0]); r[1] != want {
						t.Errorf("loop %d runs on %d (negative: mask of that many CPUs), want CPU %d", r[0], r[1], want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("loop did not run the posted function")
				}
			}
		})
	}
}

// newNodeOn makes a node, on a thread allowed only CPU cpu if narrow. The
// thread stays locked, so it ends with the goroutine and its mask with it.
func newNodeOn(narrow bool, cpu int, cfg Config) (*Node, error) {
	if !narrow {
		return NewNode(cfg, &nopHandler{})
	}
	type result struct {
		n   *Node
		err error
	}
	out := make(chan result)
	go func() {
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			out <- result{nil, err}
			return
		}
		n, err := NewNode(cfg, &nopHandler{})
		out <- result{n, err}
	}()
	r := <-out
	return r.n, r.err
}

// TestPinnedThreadRestoredAfterLoop: a pinned loop's thread returns to the
// runtime's pool when the loop ends; it must get back the CPUs it had, or
// later goroutines (and processes started from that thread) stay on the
// loop's one CPU.
func TestPinnedThreadRestoredAfterLoop(t *testing.T) {
	allowed := allowedCPUs()
	if len(allowed) < 2 {
		t.Skip("one CPU: pinning narrows nothing")
	}
	last := allowed[len(allowed)-1]
	n, err := NewNode(Config{Loops: 1, Pin: true, CPUs: []int{last}, Logger: zerolog.Nop()}, newTestHandler())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	tid := make(chan int, 1)
	n.Post(0, func(*Loop) { tid <- unix.Gettid() })
	id := <-tid
	n.Close()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(id, &set); err != nil {
		// The thread has exited: nothing can inherit its mask, and there
		// is nothing to check.
		t.Skipf("the loop's thread %d exited before it could be checked: %v", id, err)
	}
	if got := cpusOf(&set); !slices.Equal(got, allowed) {
		t.Fatalf("loop thread %d after the loop: CPUs %v, want %v", id, got, allowed)
	}
}
