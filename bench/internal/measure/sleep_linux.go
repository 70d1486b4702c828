package measure

import (
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleep blocks the calling thread in clock_nanosleep, which wakes
// within tens of microseconds, where a runtime timer may take a millisecond.
func preciseSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
