package conn

import (
	"sync"
	"sync/atomic"
)

// inbox is a loop's multi-producer single-consumer queue of functions. Any
// goroutine may push; only the loop pops. Wake-ups are coalesced: between two
// drains, however many pushes arrive, the eventfd is written at most once.
type inbox struct {
	mu     sync.Mutex
	q      []func(*Loop) // guarded by mu
	spare  []func(*Loop) // loop-owned; swapped with q on drain
	closed bool          // guarded by mu: pushes are dropped after close
	armed  atomic.Bool   // a wake-up is pending: later pushes need not write
	wakes  atomic.Int64  // eventfd writes, for tests and stats
	wake   func()        // writes the eventfd
}

// push queues fn and wakes the loop unless a wake-up is already pending. It
// reports false if the loop has stopped and fn will never run.
func (b *inbox) push(fn func(*Loop)) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.q = append(b.q, fn)
	// The write happens under mu so that close cannot release the eventfd
	// between the check above and the write.
	if b.armed.CompareAndSwap(false, true) {
		b.wakes.Add(1)
		b.wake()
	}
	b.mu.Unlock()
	return true
}

// take returns the queued functions. The slice is valid until the next take.
// Clearing armed before the swap means a push racing with this drain either
// lands in this batch or writes the eventfd again.
func (b *inbox) take() []func(*Loop) {
	b.armed.Store(false)
	b.mu.Lock()
	q := b.q
	b.q = b.spare[:0]
	b.mu.Unlock()
	b.spare = q
	return q
}

// close makes later pushes fail and returns what was still queued.
func (b *inbox) close() []func(*Loop) {
	b.mu.Lock()
	b.closed = true
	q := b.q
	b.q = nil
	b.mu.Unlock()
	return q
}
