package load

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/bench/internal/measure"
)

// Options says how Run executes a Config.
type Options struct {
	// Exec is the huntload binary to start workers with (its hidden
	// "worker" subcommand). "" runs every worker inside this process, which
	// is what tests do and what fits runs under MaxPerProc sockets.
	Exec string
	// Progress receives a live line at most once a second; nil = none.
	Progress io.Writer
	Logger   zerolog.Logger
}

// workerProc is one running worker as the parent sees it.
type workerProc struct {
	msgs  chan Msg
	start func(t time.Time)
	abort func()
	wait  func() error
}

// Run executes one scenario and returns its report.
func Run(cfg Config, opt Options) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opt.Logger
	wall0 := time.Now()
	cpu0 := measure.SelfCPU()
	self0, _ := measure.SampleProc(os.Getpid())
	slab0, _ := measure.KernelSlab()
	ctx := context.Background()

	var adm *admin
	if cfg.Admin != "" {
		adm = newAdmin(cfg.Admin, cfg.APIKey)
	}
	switch cfg.Scenario {
	case Dig, Game, Crowd:
		for i := 0; i < cfg.Hunts; i++ {
			if err := adm.ensureHunt(ctx, cfg.HuntID+"-"+strconv.Itoa(i), cfg.Grid, cfg.Treasures, i+1); err != nil {
				return nil, err
			}
		}
	case Event:
		if err := adm.ensureHunt(ctx, cfg.HuntID+"-0", cfg.Grid, cfg.Treasures, 1); err != nil {
			return nil, err
		}
	}

	var stepRates []float64
	var stepDur time.Duration
	if cfg.Scenario == Fanout || cfg.Scenario == Event {
		stepRates = cfg.Rates
		if cfg.Rate > 0 {
			stepRates = []float64{cfg.Rate}
		}
		if len(stepRates) == 0 {
			stepRates = DefaultRates
		}
		stepDur = cfg.Duration / time.Duration(len(stepRates))
	}
	// Crowd's steps: the event phase's two (the event alone, its floor)
	// when asked for, then the events of the dig phase.
	pre := 0
	if cfg.Scenario == Crowd {
		if cfg.EventWait > 0 {
			pre = 2
			stepRates = []float64{0, 0}
		}
		if cfg.EventRate > 0 {
			stepRates, stepDur = append(stepRates, cfg.EventRate), cfg.Duration-cfg.EventAfter
		}
	}

	smp := newSampler(cfg.PIDs())
	defer smp.stop()
	s0 := smp.sample()
	cold := s0
	if cfg.Scenario == Hold && cfg.PID != 0 {
		// The baseline of the per-connection memory is taken after a few
		// connections came and went: the first connections fault in the
		// server's code and runtime pages for the connection path, a cost
		// paid once per process (file-backed, shared), not per connection.
		warmUp(cfg.URL, holdScenario{}.path(nil, nil), warmUpConns, log)
		s0 = smp.sample()
	}

	wcs := cfg.Split()
	procs := make([]*workerProc, len(wcs))
	for i := range wcs {
		wcs[i].StepRates, wcs[i].StepDur = stepRates, stepDur
		var err error
		if opt.Exec == "" {
			procs[i] = startInProcess(wcs[i], log)
		} else {
			procs[i], err = startExec(opt.Exec, wcs[i])
		}
		if err != nil {
			for _, p := range procs[:i] {
				p.abort()
			}
			return nil, err
		}
	}
	agg := newAggregator(cfg, len(procs), opt.Progress, smp)
	all := merge(procs)

	// Connect phase: wait until every worker is ready.
	ready := 0
	var connected, failed, joinsAtStart, rssBase, rss int64
	readyBy := time.After(cfg.Ramp + cfg.Ramp/2 + 90*time.Second)
	for ready < len(procs) {
		select {
		case m, ok := <-all:
			if !ok {
				return nil, fmt.Errorf("load: workers exited before they were ready")
			}
			switch m.Type {
			case "ready":
				ready++
				connected += m.Connected
				failed += m.Failed
				joinsAtStart += m.Joined
				rssBase += m.RSSBase
				rss += m.RSS
			case "tick":
				agg.tick(m)
			case "error":
				for _, p := range procs {
					p.abort()
				}
				return nil, fmt.Errorf("load: worker %d: %s", m.Worker, m.Err)
			}
		case <-readyBy:
			for _, p := range procs {
				p.abort()
			}
			return nil, fmt.Errorf("load: workers not ready after the connect deadline")
		}
	}
	if connected == 0 {
		for _, p := range procs {
			p.abort()
		}
		return nil, fmt.Errorf("load: no player connected (%d dials failed)", failed)
	}
	s1 := smp.sample()
	connectWall := time.Since(wall0)
	var sys *syscallCounter
	if cfg.Syscalls && cfg.PID != 0 {
		var err error
		if sys, err = startSyscalls(cfg.PIDs()); err != nil {
			for _, p := range procs {
				p.abort()
			}
			return nil, err
		}
	}
	slab1, _ := measure.KernelSlab()
	self1, _ := measure.SampleProc(os.Getpid())
	if opt.Exec == "" {
		// In-process workers share this process: its own growth is theirs.
		rssBase, rss = self0.RSSBytes, self1.RSSBytes
	} else {
		rss += self1.RSSBytes
		rssBase += self0.RSSBytes
	}
	var phase *crowdPhase
	if cfg.Scenario == Crowd && cfg.EventWait > 0 {
		var err error
		if phase, err = eventPhase(cfg, adm, all, agg, connected, log); err != nil {
			for _, p := range procs {
				p.abort()
			}
			return nil, err
		}
	}
	start := time.Now().Add(200 * time.Millisecond)
	// Crowd's ping floor (PingFor) comes first; the digs, the dig phase's
	// events and the kill are timed from digStart.
	digStart := start.Add(cfg.PingFor)
	end := digStart.Add(cfg.Duration)
	for _, p := range procs {
		p.start(start)
	}
	if cfg.Scenario == Hold {
		smp.settle(start.Add(cfg.Duration/2), end)
	}
	// The server's state at the end of the measured phase, before closes.
	// The server's state at the end of the measured phase, before closes,
	// and this process's CPU over the measured phase.
	var s2 measure.ProcSample
	var selfStart, selfEnd float64
	var sysTotal int64
	var sysBy map[string]int64
	var sysErr error
	s2done := make(chan struct{})
	go func() {
		defer close(s2done)
		time.Sleep(time.Until(start))
		selfStart = measure.SelfCPU()
		time.Sleep(time.Until(end.Add(-50 * time.Millisecond)))
		s2 = smp.sample()
		selfEnd = measure.SelfCPU()
		if sys != nil {
			sysTotal, sysBy, sysErr = sys.stop()
		}
	}()

	var pub *publisher
	switch {
	case cfg.Scenario == Event:
		pub = newPublisher(adm, []string{cfg.HuntID + "-0"}, stepRates, 0, stepDur)
		go pub.run(start)
	case cfg.Scenario == Crowd && len(stepRates) > pre:
		hunts := make([]string, cfg.Hunts)
		for i := range hunts {
			hunts[i] = cfg.HuntID + "-" + strconv.Itoa(i)
		}
		pub = newPublisher(adm, hunts, stepRates, pre, stepDur)
		go pub.run(digStart.Add(cfg.EventAfter))
	}
	var killedAt float64
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		if cfg.KillPID == 0 {
			return
		}
		time.Sleep(time.Until(digStart.Add(cfg.KillAfter)))
		err := syscall.Kill(cfg.KillPID, syscall.SIGKILL)
		killedAt = time.Since(digStart).Seconds()
		log.Warn().Err(err).Int("pid", cfg.KillPID).Float64("at_s", killedAt).Msg("load: killed a server process with SIGKILL")
		if err != nil {
			killedAt = -1
		}
	}()

	var results []*Result
	for m := range all {
		switch m.Type {
		case "tick":
			agg.tick(m)
		case "final":
			results = append(results, m.Result)
		case "error":
			log.Error().Int("worker", m.Worker).Str("err", m.Err).Msg("load: worker failed")
		}
	}
	for _, p := range procs {
		if err := p.wait(); err != nil {
			log.Warn().Err(err).Msg("load: worker exit")
		}
	}
	<-s2done
	<-killDone
	if pub != nil {
		pub.wait()
	}
	if len(results) != len(procs) {
		return nil, fmt.Errorf("load: %d of %d workers returned a result", len(results), len(procs))
	}
	// The servers' peak RSS, after the drain: what an overload cost at
	// its worst, however briefly.
	var peak int64
	for _, pid := range cfg.PIDs() {
		if p, err := measure.PeakRSS(pid); err == nil {
			peak += p
		}
	}
	wall := time.Since(wall0)
	own := measure.SelfCPU() - cpu0
	if opt.Exec != "" {
		for _, r := range results {
			own += r.CPU
		}
	}
	_ = wall
	rep := buildReport(cfg, results, stepRates, stepDur, agg, pub, phase)
	rep.StartedAt = start.Sub(agg.t0).Seconds()
	f := &rep.Facts
	f.Failed = failed
	f.ConnectS = connectWall.Seconds()
	f.KilledAtS = killedAt
	f.LoadRSS = rss
	if connected > 0 {
		f.LoadRSSPerPlayer = float64(rss-rssBase) / float64(connected)
		f.KernelSlabPerSocket = float64(slab1-slab0) / float64(2*connected)
	}
	if f.ConnectS > 0 {
		f.Joins.PerS = float64(joinsAtStart) / f.ConnectS
	}
	f.OwnCPUS = own
	measured := selfEnd - selfStart
	if opt.Exec != "" {
		for _, r := range results {
			measured += r.CPUMeasured
		}
	}
	f.OwnCPUMeasuredS = measured
	f.OwnCPUCores = measured / (cfg.PingFor + cfg.Duration).Seconds()
	f.OwnCPUShare = f.OwnCPUCores / float64(numCPU())
	if cfg.PID != 0 && s0.CPUSeconds >= 0 && !s1.At.IsZero() {
		f.ServerRSSBefore = s0.RSSBytes
		f.ServerRSSCold = cold.RSSBytes
		f.ServerRSSPeak = peak
		f.ServerRSS = s2.RSSBytes
		f.ServerRSSHow = "at the end of the measured phase"
		if m := smp.settledRSS(); cfg.Scenario == Hold && m > 0 {
			f.ServerRSS = m
			f.ServerRSSHow = fmt.Sprintf("lowest of the 1 s samples from %s into the hold to its end (settled)", cfg.Duration/2)
		}
		if len(cfg.ExtraPIDs) > 0 {
			f.ServerRSSHow += fmt.Sprintf(", summed over %d server processes", 1+len(cfg.ExtraPIDs))
		}
		if f.Connections > 0 {
			f.ServerRSSPerConn = float64(f.ServerRSS-s0.RSSBytes) / float64(f.Connections)
			f.ServerRSSPerConnCold = float64(f.ServerRSS-cold.RSSBytes) / float64(f.Connections)
			f.ServerCPUPerConnUS = (s1.CPUSeconds - s0.CPUSeconds) / float64(connected) * 1e6
		}
		f.ServerCPUS = s2.CPUSeconds - s1.CPUSeconds
		f.ServerCPUCores = f.ServerCPUS / (cfg.PingFor + cfg.Duration).Seconds()
		if ops := serverOps(rep); ops > 0 {
			f.ServerCPUPerOpUS = f.ServerCPUS / ops * 1e6
			if sysErr != nil {
				log.Error().Err(sysErr).Msg("load: counting the server's system calls")
			} else if sys != nil {
				f.ServerSyscalls, f.ServerSyscallsBy = sysTotal, sysBy
				f.ServerSyscallsPerOp = float64(sysTotal) / ops
			}
		}
	}
	_ = connected
	return rep, nil
}

// serverOps is what the server did in the measured phase, per which its CPU
// and system calls are quoted: echoed messages (echo) or deliveries
// (fanout); 0 for other scenarios.
func serverOps(r *Report) float64 {
	switch r.Scenario {
	case Echo:
		return r.Facts.ThroughputPerS * r.Config.Duration.Seconds()
	case Fanout:
		var n int64
		for _, s := range r.Steps {
			n += s.Delivered
		}
		return float64(n)
	}
	return 0
}

func numCPU() int { return runtime.NumCPU() }

// merge fans the workers' message channels into one that closes when all do.
func merge(procs []*workerProc) <-chan Msg {
	out := make(chan Msg, 64)
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range p.msgs {
				out <- m
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

func startInProcess(wc WorkerConfig, log zerolog.Logger) *workerProc {
	msgs := make(chan Msg, 64)
	start := make(chan time.Time, 1)
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		defer close(msgs)
		err := Worker(wc, log, start, func(m Msg) { msgs <- m })
		if err != nil {
			msgs <- Msg{Type: "error", Worker: wc.Worker, Err: err.Error()}
		}
		errc <- err
	}()
	return &workerProc{
		msgs:  msgs,
		start: func(t time.Time) { once.Do(func() { start <- t; close(start) }) },
		abort: func() { once.Do(func() { close(start) }) },
		wait:  func() error { return <-errc },
	}
}

func startExec(bin string, wc WorkerConfig) (*workerProc, error) {
	cmd := exec.Command(bin, "worker")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("load: start worker: %w", err)
	}
	line, _ := json.Marshal(wc)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("load: configure worker: %w", err)
	}
	msgs := make(chan Msg, 64)
	go func() {
		defer close(msgs)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		for sc.Scan() {
			var m Msg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				msgs <- Msg{Type: "error", Worker: wc.Worker, Err: "bad worker output: " + err.Error()}
				continue
			}
			msgs <- m
		}
	}()
	var once sync.Once
	return &workerProc{
		msgs: msgs,
		start: func(t time.Time) {
			once.Do(func() { _, _ = fmt.Fprintf(stdin, "start %d\n", t.UnixNano()) })
		},
		abort: func() { once.Do(func() { _ = stdin.Close() }) },
		wait:  func() error { _ = stdin.Close(); return cmd.Wait() },
	}, nil
}

// ServeWorker is the hidden "worker" subcommand: the config on the first
// line of in, "start NS" on the next; JSON lines of Msg on out.
func ServeWorker(in io.Reader, out io.Writer, log zerolog.Logger) error {
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("load: worker config: %w", err)
	}
	var wc WorkerConfig
	if err := json.Unmarshal(line, &wc); err != nil {
		return fmt.Errorf("load: worker config: %w", err)
	}
	wc.JWTSecret = wc.Key
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(m Msg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	start := make(chan time.Time, 1)
	go func() {
		defer close(start)
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(l, "start ")), 10, 64)
		if err != nil {
			return
		}
		start <- time.Unix(0, ns)
	}()
	if err := Worker(wc, log, start, emit); err != nil {
		emit(Msg{Type: "error", Worker: wc.Worker, Err: err.Error()})
		return err
	}
	return nil
}

// sampler reads the server's /proc entries once a second for the timeline.
// With several server processes (one per CPU sharing the port) a sample is
// their sum. It also keeps the lowest RSS seen from settleAt to settleEnd,
// because a server's RSS right after a burst of handshakes still holds
// garbage the runtime has not returned yet: the idle footprint is the
// settled minimum. Sampling goes on after the hold while the connections
// close, and those samples must not count as the idle footprint.
type sampler struct {
	pids      []int
	read      func(pid int) (measure.ProcSample, error)
	mu        sync.Mutex
	last      measure.ProcSample
	settleAt  time.Time
	settleEnd time.Time
	minRSS    int64 // lowest RSS sampled in [settleAt, settleEnd]; 0 = none yet
	done      chan struct{}
	once      sync.Once
}

func newSampler(pids []int) *sampler {
	s := &sampler{pids: pids, read: measure.SampleProc, done: make(chan struct{})}
	if len(pids) > 0 {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-s.done:
					return
				case <-t.C:
					s.sample()
				}
			}
		}()
	}
	return s
}

// settle sets the minimum-RSS window to [from, to].
func (s *sampler) settle(from, to time.Time) {
	s.mu.Lock()
	s.settleAt, s.settleEnd, s.minRSS = from, to, 0
	s.mu.Unlock()
}

// settledRSS is the lowest RSS in the settle window (0 if nothing was sampled).
func (s *sampler) settledRSS() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minRSS
}

func (s *sampler) sample() measure.ProcSample {
	if len(s.pids) == 0 {
		return measure.ProcSample{}
	}
	var sum measure.ProcSample
	for _, pid := range s.pids {
		p, err := s.read(pid)
		if err != nil {
			return measure.ProcSample{}
		}
		sum.At = p.At
		sum.RSSBytes += p.RSSBytes
		sum.CPUSeconds += p.CPUSeconds
	}
	s.mu.Lock()
	s.last = sum
	inWindow := !s.settleAt.IsZero() && !sum.At.Before(s.settleAt) && !sum.At.After(s.settleEnd)
	if inWindow && (s.minRSS == 0 || sum.RSSBytes < s.minRSS) {
		s.minRSS = sum.RSSBytes
	}
	s.mu.Unlock()
	return sum
}

func (s *sampler) latest() measure.ProcSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *sampler) stop() { s.once.Do(func() { close(s.done) }) }

// warmUpConns is how many connections warm a server up before the
// baseline of a hold is taken.
const warmUpConns = 64

// warmUp opens n WebSocket connections to path on the server at url, one
// after another, completes each handshake, and closes them all. Failures
// are logged and ignored: the warm-up only moves the baseline.
func warmUp(url, path string, n int, log zerolog.Logger) {
	var cs []*websocket.Conn
	defer func() {
		for _, c := range cs {
			c.Close()
		}
		// Give the server a moment to see the closes before the baseline.
		time.Sleep(500 * time.Millisecond)
	}()
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	for i := 0; i < n; i++ {
		c, _, err := d.Dial(url+path, nil)
		if err != nil {
			log.Warn().Err(err).Msg("load: warm-up handshake")
			return
		}
		cs = append(cs, c)
	}
}
