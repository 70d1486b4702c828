package conn

import (
	"os"
	"runtime"
	"testing"
)

func TestReserveSpareP(t *testing.T) {
	if v, ok := os.LookupEnv("GOMAXPROCS"); ok {
		t.Skipf("GOMAXPROCS=%s set in the environment", v)
	}
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	runtime.GOMAXPROCS(2)
	ReserveSpareP(2)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("GOMAXPROCS %d with 2 loops, want 3", got)
	}
	runtime.GOMAXPROCS(8)
	ReserveSpareP(2)
	if got := runtime.GOMAXPROCS(0); got != 8 {
		t.Fatalf("GOMAXPROCS lowered to %d", got)
	}
	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	ReserveSpareP(2)
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("explicit GOMAXPROCS overridden: %d", got)
	}
}
