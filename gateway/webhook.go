package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/state"
)

// Webhooks: every reliable update (claimed, event, ended, started) is POSTed
// to Config.WebhookURL, one per request, as the object players get as an
// update push, signed with HMAC-SHA256 of Config.WebhookSecret.
//
// The engine's sink only appends the encoded update to its hunt's queue in
// the outbox (a short mutex, no I/O), so an event loop that runs the sink
// (memory engine, inline dig) never waits for the receiver. A hunt with a
// queue has one delivery goroutine that sends its head, retries it with
// jittered exponential backoff until a 2xx, and only then takes the next:
// per hunt in seq order, at least once (a retry after a lost 2xx sends a
// copy; X-Huntgate-Delivery names it). Hunts do not wait for each other.
// The outbox is bounded by count (updates refused when full) and age
// (updates older than that are dropped when their turn comes); both are
// counted in /metrics and logged, and the next delivery of the hunt
// carries X-Huntgate-Gap: the number of its updates before this one that
// will not be delivered (the claims record and the updates feed have them).
//
// With a shared engine (state.WebhookQueue: Redis, Redis Cluster) the
// outbox is the engine's: each hunt's undelivered updates sit in Redis,
// appended in the same atomic step that recorded them, and one node at a
// time delivers a hunt under a lease that each claim renews (runShared).
// A node learns of a hunt's new updates from its sink (it watches the
// hunts it delivers), from its own admin writes, and from a scan every
// webhookScan for hunts with updates and no live lease, which is how a
// node takes over from one that died: from the first unacknowledged update,
// so a hunt's updates still arrive in seq order, at least once.

// DefaultWebhookOutbox is the default of Config.WebhookOutbox: updates
// waiting for delivery, on this node (memory engine) or per hunt in Redis.
const DefaultWebhookOutbox = 100_000

// Defaults of the webhook outbox and requests.
const (
	defaultWebhookTimeout = 5 * time.Second
	defaultWebhookMaxAge  = time.Hour
	webhookBackoffBase    = 100 * time.Millisecond
	webhookBackoffMax     = 30 * time.Second

	// webhookLeaseSlack is how much longer a delivery lease lasts than one
	// attempt (--webhook-timeout): the holder renews it before an attempt
	// that could outlive it, so two nodes never send a hunt's updates at
	// once while the holder lives.
	webhookLeaseSlack = 2 * time.Second
	// webhookLeaseMargin is how much of the lease an attempt leaves unused
	// at worst: a holder renews when less than timeout+margin is left
	// (counted from when its last claim was sent, before Redis started the
	// lease), so every attempt ends at least this long before the lease.
	webhookLeaseMargin = 500 * time.Millisecond
	// webhookBatch is how many updates one claim reads.
	webhookBatch = 64
	// webhookIdle is how long a holder keeps an idle hunt's lease.
	webhookIdle = 10 * time.Second
	// webhookElsewhere is how long a node that found a hunt's lease held
	// by another does not try again on its own updates (the scan still
	// does when the lease is free).
	webhookElsewhere = time.Second
)

// webhookScan is how often each node looks for hunts with undelivered
// updates and no live lease (a variable so that tests can shorten it).
var webhookScan = time.Second

type webhookItem struct {
	body     []byte
	delivery string // hunt:epoch:seq
	at       time.Time
	gap      uint64 // updates of the hunt before this one not delivered
}

// webhooks is the outbox and its delivery goroutines.
type webhooks struct {
	url    string
	secret []byte
	macs   sync.Pool // hash.Hash: HMAC-SHA256 with secret
	client *http.Client
	log    zerolog.Logger
	max    int
	maxAge time.Duration
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[string][]webhookItem // hunt -> its undelivered updates, in seq order
	gaps   map[string]uint64        // hunt -> updates dropped since its last queued one
	queued int
	closed bool

	// Shared mode (q != nil): the engine holds the backlog.
	q         state.WebhookQueue
	watch     func(hunt string) // Engine.Watch/Unwatch: the sink wakes a holder
	unwatch   func(hunt string)
	lease     time.Duration
	running   map[string]chan struct{} // hunt -> its deliverer's wake
	elsewhere map[string]time.Time     // hunt -> until when another node holds it

	delivered, attempts, failures, overflow, expired, gapped atomic.Int64
	claims, claimed, held                                    atomic.Int64
	lastOverflowLog                                          atomic.Int64 // unix ns
}

func newWebhooks(c *Config, log zerolog.Logger) *webhooks {
	w := &webhooks{
		url:    c.WebhookURL,
		secret: []byte(c.WebhookSecret),
		// The timeout bounds one attempt, connection and body included.
		// Each hunt delivering at once keeps its connection: the default
		// transport keeps 2 idle per host, so with more hunts under way
		// every request beyond would dial (and leave a TIME_WAIT).
		client: &http.Client{Timeout: c.WebhookTimeout, Transport: webhookTransport()},
		log:    log,
		max:    c.WebhookOutbox,
		maxAge: c.WebhookMaxAge,
		queues: make(map[string][]webhookItem),
		gaps:   make(map[string]uint64),
		lease:  c.WebhookTimeout + webhookLeaseSlack,
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// newSharedWebhooks is newWebhooks on a shared engine's backlog.
func newSharedWebhooks(c *Config, log zerolog.Logger, e state.Engine, q state.WebhookQueue) *webhooks {
	w := newWebhooks(c, log)
	w.q, w.watch, w.unwatch = q, e.Watch, e.Unwatch
	w.running = make(map[string]chan struct{})
	w.elsewhere = make(map[string]time.Time)
	return w
}

// start starts the scan of a shared backlog (Gateway.Start).
func (w *webhooks) start() {
	if w.q != nil {
		w.wg.Add(1)
		go w.scan()
	}
}

// wrote tells the webhooks that this node wrote reliable updates of hunt
// (an admin event or end): in shared mode its deliverer may not watch it.
func (w *webhooks) wrote(hunt string) {
	if w.q != nil {
		w.notify(hunt)
	}
}

// itemOf makes u's outbox item; body, if not nil, is u encoded already.
func itemOf(u *state.Update, body []byte) webhookItem {
	if body != nil {
		body = append([]byte(nil), body...)
	} else {
		body = appendUpdate(make([]byte, 0, 160+len(u.Data)), u)
	}
	it := webhookItem{body: body, at: time.Now()}
	it.delivery = u.Hunt + ":" + strconv.FormatUint(u.Epoch, 10) + ":" + strconv.FormatUint(u.Seq, 10)
	return it
}

// enqueue adds a reliable update to the outbox; body is u encoded, or nil
// (then it encodes). It runs in the engine's sink: it copies the body,
// takes the outbox mutex briefly and may start the hunt's delivery
// goroutine; it never waits for the network. In shared mode it only wakes
// the hunt's deliverer.
func (w *webhooks) enqueue(u *state.Update, body []byte) {
	if !u.Kind.Reliable() {
		return
	}
	if w.q != nil {
		w.notify(u.Hunt) // the update is in the engine's backlog already
		return
	}
	it := itemOf(u, body)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if w.queued >= w.max {
		w.gaps[u.Hunt]++
		w.mu.Unlock()
		w.overflow.Add(1)
		// Logged at most once a second: an outage can overflow thousands.
		now := time.Now().UnixNano()
		if last := w.lastOverflowLog.Load(); now-last > int64(time.Second) && w.lastOverflowLog.CompareAndSwap(last, now) {
			w.log.Error().Str("delivery", it.delivery).Int("outbox", w.max).Int64("overflow_total", w.overflow.Load()).
				Msg("gateway: webhook outbox full, update not delivered")
		}
		return
	}
	if g := w.gaps[u.Hunt]; g > 0 {
		it.gap = g
		delete(w.gaps, u.Hunt)
	}
	q, running := w.queues[u.Hunt]
	w.queues[u.Hunt] = append(q, it)
	w.queued++
	if !running {
		w.wg.Add(1) // under mu: close (closed set under mu) waits for it
		go w.run(u.Hunt)
	}
	w.mu.Unlock()
}

// run delivers hunt's queue in order until it is empty.
func (w *webhooks) run(hunt string) {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		q := w.queues[hunt]
		if len(q) == 0 {
			delete(w.queues, hunt) // the next enqueue starts a new goroutine
			w.mu.Unlock()
			return
		}
		it := q[0]
		w.mu.Unlock()
		ok := true
		if time.Since(it.at) > w.maxAge {
			w.expired.Add(1)
			w.log.Error().Str("delivery", it.delivery).Dur("age", time.Since(it.at)).Msg("gateway: webhook update older than --webhook-max-age dropped")
			ok = false
		} else {
			switch w.deliver(&it, nil) {
			case deliverStopped:
				return
			case deliverExpired:
				ok = false
			}
		}
		w.mu.Lock()
		q = w.queues[hunt]
		q[0] = webhookItem{}
		w.queues[hunt] = q[1:]
		w.queued--
		if !ok {
			// The next delivery of the hunt reports this one (and any it
			// had to report) as missing.
			if len(q) > 1 {
				q[1].gap += it.gap + 1
			} else {
				w.gaps[hunt] += it.gap + 1
			}
		}
		w.mu.Unlock()
	}
}

// Outcomes of deliver.
const (
	deliverOK      = iota // a 2xx
	deliverExpired        // older than --webhook-max-age: dropped, counted
	deliverStopped        // the gateway stops, or (shared) the lease is lost
)

// deliver POSTs it until a 2xx. before, if not nil, runs before each
// attempt; false stops (the lease is lost).
func (w *webhooks) deliver(it *webhookItem, before func() bool) int {
	sig := w.sign(it.body)
	for attempt := 0; ; attempt++ {
		if time.Since(it.at) > w.maxAge {
			w.expired.Add(1)
			w.log.Error().Str("delivery", it.delivery).Int("attempts", attempt).Msg("gateway: webhook update older than --webhook-max-age dropped")
			return deliverExpired
		}
		if before != nil && !before() {
			return deliverStopped
		}
		w.attempts.Add(1)
		status, err := w.post(it, sig)
		if err == nil && status >= 200 && status < 300 {
			w.delivered.Add(1)
			if it.gap > 0 {
				w.gapped.Add(int64(it.gap))
			}
			return deliverOK
		}
		w.failures.Add(1)
		d := min(webhookBackoffBase<<min(attempt, 20), webhookBackoffMax)
		d = d/2 + rand.N(d/2+1) // jitter: receivers coming back are not hit in step
		ev := w.log.Warn().Str("delivery", it.delivery).Int("attempt", attempt+1).Dur("retry_in", d)
		if err != nil {
			ev = ev.Err(err)
		} else {
			ev = ev.Int("status", status)
		}
		ev.Msg("gateway: webhook delivery failed")
		if !w.sleep(d, before) {
			return deliverStopped
		}
	}
}

// sleep waits d; with before (shared mode) it runs it every third of the
// lease meanwhile, so a long backoff keeps the lease. False if the gateway
// stops or before fails.
func (w *webhooks) sleep(d time.Duration, before func() bool) bool {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		if before != nil {
			left = min(left, w.lease/3)
		}
		t := time.NewTimer(left)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		if before != nil && time.Now().Before(end) && !before() {
			return false
		}
	}
}

// sign returns the X-Huntgate-Signature of body. The HMAC states are
// pooled: a new one per update would be garbage the event loops pay for in
// GC cycles.
func (w *webhooks) sign(body []byte) string {
	mac, _ := w.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, w.secret)
	}
	mac.Reset()
	mac.Write(body)
	var sum [sha256.Size]byte
	var out [7 + 2*sha256.Size]byte
	copy(out[:], "sha256=")
	hex.Encode(out[7:], mac.Sum(sum[:0]))
	w.macs.Put(mac)
	return string(out[:])
}

// webhookTransport is http.DefaultTransport's settings with idle
// connections kept per host for many hunts delivering at once.
func webhookTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

func (w *webhooks) post(it *webhookItem, sig string) (int, error) {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(it.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Huntgate-Signature", sig)
	req.Header.Set("X-Huntgate-Delivery", it.delivery)
	if it.gap > 0 {
		req.Header.Set("X-Huntgate-Gap", strconv.FormatUint(it.gap, 10))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drained (a little) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// outbox returns the number of updates waiting for delivery: in shared
// mode, those this node has claimed and not yet delivered.
func (w *webhooks) outbox() int {
	if w.q != nil {
		return int(w.claimed.Load())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// close stops the delivery goroutines; what is still queued is lost with
// the process, as the memory engine's hunts are (in shared mode it stays
// in the engine, and the leases held expire for another node to go on).
func (w *webhooks) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	w.client.CloseIdleConnections()
}

// notify tells hunt's deliverer that the hunt has new updates, starting
// one unless another node holds the hunt. It never waits for the network.
func (w *webhooks) notify(hunt string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if wake, ok := w.running[hunt]; ok {
		select {
		case wake <- struct{}{}:
		default:
		}
		return
	}
	if until, ok := w.elsewhere[hunt]; ok {
		if time.Now().Before(until) {
			return
		}
		delete(w.elsewhere, hunt)
	}
	wake := make(chan struct{}, 1)
	w.running[hunt] = wake
	w.wg.Add(1)
	go w.runShared(hunt, wake)
}

// scan starts a deliverer for every hunt with undelivered updates and no
// live lease, every webhookScan.
func (w *webhooks) scan() {
	defer w.wg.Done()
	t := time.NewTicker(webhookScan)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(w.ctx, webhookScan)
		hunts, err := w.q.WebhookPending(ctx)
		cancel()
		if err != nil {
			if w.ctx.Err() == nil {
				w.log.Warn().Err(err).Msg("gateway: webhook scan failed")
			}
			continue
		}
		for _, h := range hunts {
			w.mu.Lock()
			delete(w.elsewhere, h) // the lease is free now
			w.mu.Unlock()
			w.notify(h)
		}
	}
}

// runShared delivers hunt from the engine's backlog while this node holds
// its lease: claim (renewing the lease, acknowledging what was delivered,
// reading the next updates), deliver them in order, and again; when there
// is nothing to deliver it waits for wake (the sink) and renews the lease
// every third of it, and gives the lease up after webhookIdle.
func (w *webhooks) runShared(hunt string, wake chan struct{}) {
	defer w.wg.Done()
	watched := false
	defer func() {
		w.mu.Lock()
		delete(w.running, hunt)
		w.mu.Unlock()
		if watched {
			w.unwatch(hunt)
			w.held.Add(-1)
		}
	}()
	var (
		ack     string    // the last update delivered, not yet acknowledged
		gapAck  uint64    // the gap reported with it, not yet acknowledged
		renewed time.Time // when the last claim that held the lease was sent
		idle    = time.Now()
		fails   int
		local   uint64 // updates this node dropped (age) not yet reported
	)
	claim := func(n int) (state.WebhookBatch, bool) {
		for {
			sent := time.Now()
			ctx, cancel := context.WithTimeout(w.ctx, w.lease/3)
			b, err := w.q.WebhookClaim(ctx, hunt, ack, gapAck, n, w.lease, w.maxAge)
			cancel()
			w.claims.Add(1)
			if err == nil {
				fails = 0
				ack, gapAck = "", 0
				if !b.Held {
					w.mu.Lock()
					w.elsewhere[hunt] = time.Now().Add(webhookElsewhere)
					w.mu.Unlock()
					return b, false
				}
				renewed = sent
				return b, true
			}
			if w.ctx.Err() != nil {
				return b, false
			}
			if fails++; fails == 1 || fails%50 == 0 {
				w.log.Warn().Err(err).Str("hunt", hunt).Int("failures", fails).Msg("gateway: webhook claim failed; retried")
			}
			t := time.NewTimer(min(webhookBackoffBase<<min(fails, 5), w.lease/3))
			select {
			case <-w.ctx.Done():
				t.Stop()
				return b, false
			case <-t.C:
			}
		}
	}
	// keep renews the lease before an attempt that could outlive it; false
	// if it is lost (another node took over after this one stalled).
	keep := func() bool {
		if time.Since(renewed) < webhookLeaseSlack-webhookLeaseMargin {
			return true
		}
		_, ok := claim(0)
		return ok
	}
	for {
		b, ok := claim(webhookBatch)
		if !ok {
			return
		}
		if !watched {
			w.watch(hunt) // its updates now wake this deliverer
			watched = true
			w.held.Add(1)
		}
		if len(b.Entries) == 0 && time.Since(idle) > webhookIdle {
			ctx, cancel := context.WithTimeout(w.ctx, w.lease/3)
			_ = w.q.WebhookRelease(ctx, hunt)
			cancel()
			return
		}
		if b.Gap > 0 {
			w.log.Error().Str("hunt", hunt).Uint64("missing", b.Gap).Str("next", b.Entries[0].ID).
				Msg("gateway: webhook updates dropped from the backlog (--webhook-outbox or --webhook-max-age) are reported with the next delivery (X-Huntgate-Gap)")
		}
		engGap := b.Gap // dropped by the engine, reported with the next delivery
		w.claimed.Add(int64(len(b.Entries)))
		for i := range b.Entries {
			en := &b.Entries[i]
			it := itemOf(&en.Update, nil)
			it.at = en.Update.At
			it.gap = engGap + local
			r := w.deliver(&it, keep)
			if r == deliverStopped {
				w.claimed.Add(-int64(len(b.Entries) - i))
				return
			}
			if r == deliverExpired {
				local++ // acknowledged all the same, reported with the next
			} else {
				gapAck += engGap
				engGap, local = 0, 0
			}
			w.claimed.Add(-1)
			ack = en.ID
		}
		if len(b.Entries) > 0 {
			idle = time.Now()
		}
		if len(b.Entries) == webhookBatch {
			continue // a backlog: the next batch at once
		}
		// Caught up: the next claim waits for the next update (or the
		// lease's renewal), and acknowledges this batch with it, so a
		// steady stream costs one round trip per update.
		t := time.NewTimer(w.lease / 3)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}
