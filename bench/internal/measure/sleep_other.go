//go:build !linux

package measure

import "time"

// preciseSleep is time.Sleep where clock_nanosleep is not used.
func preciseSleep(d time.Duration) { time.Sleep(d) }
