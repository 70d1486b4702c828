package gateway

// tokenBucket limits a connection's inbound messages. Times are unix nanos
// from the loop's cached clock, so checking costs no system call.
type tokenBucket struct {
	refilled   int64   // unix nanos of the last refill; 0 = never used (full)
	strikeFrom int64   // unix nanos the strike window started
	tokens     float32 // tokens left
	strikes    int32   // refused messages in the current strike window
}

// rateWindow is the window over which rate-limit strikes are counted; a
// connection that exceeds the limit strikeFactor x burst times in it is closed.
const (
	rateWindowNanos = int64(10e9)
	strikeFactor    = 3
)

// allow takes one token from the bucket at time now (unix nanos).
// It returns false when the message is over the rate, and abuse when the
// excess has been sustained long enough to close the connection.
func (s *tokenBucket) allow(now int64, rate float64, burst int) (ok, abuse bool) {
	if rate < 0 {
		return true, false
	}
	if s.refilled == 0 {
		s.tokens = float32(burst)
	} else if d := now - s.refilled; d > 0 {
		t := float64(s.tokens) + float64(d)*rate/1e9
		if t > float64(burst) {
			t = float64(burst)
		}
		s.tokens = float32(t)
	}
	s.refilled = now
	if s.tokens >= 1 {
		s.tokens--
		return true, false
	}
	if now-s.strikeFrom > rateWindowNanos {
		s.strikeFrom, s.strikes = now, 0
	}
	s.strikes++
	return false, int(s.strikes) > strikeFactor*burst
}
