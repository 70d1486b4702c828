package conn

import (
	"testing"

	"golang.org/x/sys/unix"
)

// appendIov extends the last segment with a buffer that continues it in
// memory and starts a new one otherwise.
func TestAppendIov(t *testing.T) {
	b := make([]byte, 64)
	other := make([]byte, 8)
	var iov []unix.Iovec
	iov = appendIov(iov, &b[0], 10)
	iov = appendIov(iov, &b[10], 6)    // continues: merged
	iov = appendIov(iov, &other[0], 8) // elsewhere: new segment
	iov = appendIov(iov, &b[20], 4)    // a gap after b[16]: new segment
	iov = appendIov(iov, &b[24], 40)   // continues the last one
	want := []struct {
		p *byte
		n uint64
	}{{&b[0], 16}, {&other[0], 8}, {&b[20], 44}}
	if len(iov) != len(want) {
		t.Fatalf("%d segments, want %d", len(iov), len(want))
	}
	for i, w := range want {
		if iov[i].Base != w.p || iov[i].Len != w.n {
			t.Fatalf("segment %d: %p+%d, want %p+%d", i, iov[i].Base, iov[i].Len, w.p, w.n)
		}
	}
}
