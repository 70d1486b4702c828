package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/huntgate/huntgate/bench/internal/measure"
)

// publisher posts stamped events at the rate ladder (event scenario), open
// loop: event k of a step is due at the step's start + k/rate, and a bounded
// pool of senders over keep-alive connections posts them. Three latencies
// split a slow publish between the two sides:
//
//   - publish: response minus intended time (what the game backend sees);
//   - publish.lag: request start minus intended time, the load generator's
//     own delay (all senders busy, or this process short of CPU);
//   - publish.server: response minus request start, the gateway's admin
//     API under load.
//
// If lag dominates, the publisher, not the gateway, fell behind, and the
// report says so.
type publisher struct {
	a        *admin
	hunts    []string // each event goes to every one of them
	rates    []float64
	first    int // steps before it are not the publisher's (crowd's event phase)
	stepDur  time.Duration
	sent     []atomic.Int64 // answered 2xx, per step
	intended []atomic.Int64 // due, per step
	lat      *measure.Recorder
	jobs     chan [3]int64
	wg       sync.WaitGroup
}

// publishers bounds concurrent admin requests (and keep-alive connections,
// see newAdmin).
const publishers = 64

// lagBudget is the median sender lag above which the report says that the
// publisher did not keep up with the requested rate (so does a lag p99 over
// the one-way budget, or an event not published at all).
const lagBudget = 10 * time.Millisecond

func newPublisher(a *admin, hunts []string, rates []float64, first int, stepDur time.Duration) *publisher {
	p := &publisher{a: a, hunts: hunts, rates: rates, first: first, stepDur: stepDur, sent: make([]atomic.Int64, len(rates)),
		intended: make([]atomic.Int64, len(rates)), lat: measure.NewRecorder(publishers), jobs: make(chan [3]int64, 1<<16)}
	for i := 0; i < publishers; i++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			sh := p.lat.Shard(i)
			total, lag, srv := sh.Op("publish"), sh.Op("publish.lag"), sh.Op("publish.server")
			for j := range p.jobs {
				t0 := time.Now().UnixNano()
				lag.Record(time.Duration(t0 - j[2]))
				// The same stamped event to every hunt: each player,
				// in whichever hunt, counts one receipt of it.
				var err error
				for _, h := range hunts {
					if e := a.publish(context.Background(), h, j[0], int(j[1]), j[2]); e != nil && err == nil {
						err = e
					}
				}
				t1 := time.Now().UnixNano()
				if err != nil {
					total.Error()
					continue
				}
				srv.Record(time.Duration(t1 - t0))
				total.Record(time.Duration(t1 - j[2]))
				p.sent[j[1]].Add(1)
			}
		}()
	}
	return p
}

func (p *publisher) run(start time.Time) {
	defer close(p.jobs)
	for step := p.first; step < len(p.rates); step++ {
		rate := p.rates[step]
		s0 := start.Add(time.Duration(step-p.first) * p.stepDur)
		if d := time.Until(s0); d > 0 {
			time.Sleep(d)
		}
		pc := measure.NewPacer(s0, rate, 1<<20-1)
		measure.Drive(pc, s0.Add(p.stepDur), nil, func(from, to int64) {
			p.intended[step].Add(to - from)
			for k := from; k < to; k++ {
				p.jobs <- [3]int64{int64(step)<<20 | k, int64(step), pc.Intended(k).UnixNano()}
			}
		})
	}
}

func (p *publisher) wait() { p.wg.Wait() }
