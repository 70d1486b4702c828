package load

import "testing"

// TestParsePerfStat reads the total and the named counts from perf stat -x,
// output and skips comments, blank lines and counters perf could not read.
func TestParsePerfStat(t *testing.T) {
	out := []byte(`# started on Mon Dec  7 21:45:54 2026

26163,,raw_syscalls:sys_enter,3000000000,100.00,,
5901,,syscalls:sys_enter_read,3000000000,100.00,,
5903,,syscalls:sys_enter_writev,3000000000,100.00,,
0,,syscalls:sys_enter_sendto,3000000000,100.00,,
<not counted>,,syscalls:sys_enter_futex,0,0.00,,
`)
	total, by := parsePerfStat(out)
	if total != 26163 {
		t.Fatalf("total %d, want 26163", total)
	}
	if len(by) != 2 || by["read"] != 5901 || by["writev"] != 5903 {
		t.Fatalf("by name %v, want read 5901 and writev 5903 only", by)
	}
}
