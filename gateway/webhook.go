package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
// counted in /metrics and logged.

// Defaults of the webhook outbox and requests.
const (
	defaultWebhookTimeout = 5 * time.Second
	defaultWebhookOutbox  = 100_000
	defaultWebhookMaxAge  = time.Hour
	webhookBackoffBase    = 100 * time.Millisecond
	webhookBackoffMax     = 30 * time.Second
)

type webhookItem struct {
	body     []byte
	delivery string // hunt:epoch:seq
	at       time.Time
}

// webhooks is the outbox and its delivery goroutines.
type webhooks struct {
	url    string
	secret []byte
	client *http.Client
	log    zerolog.Logger
	max    int
	maxAge time.Duration
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[string][]webhookItem // hunt -> its undelivered updates, in seq order
	queued int

	delivered, attempts, failures, overflow, expired atomic.Int64
	lastOverflowLog                                  atomic.Int64 // unix ns
}

func newWebhooks(c *Config, log zerolog.Logger) *webhooks {
	w := &webhooks{
		url:    c.WebhookURL,
		secret: []byte(c.WebhookSecret),
		// The timeout bounds one attempt, connection and body included.
		client: &http.Client{Timeout: c.WebhookTimeout},
		log:    log,
		max:    c.WebhookOutbox,
		maxAge: c.WebhookMaxAge,
		queues: make(map[string][]webhookItem),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// enqueue adds a reliable update to the outbox. It runs in the engine's
// sink: it encodes, takes the outbox mutex briefly and may start the
// hunt's delivery goroutine; it never waits for the network.
func (w *webhooks) enqueue(u *state.Update) {
	if !u.Kind.Reliable() {
		return
	}
	it := webhookItem{body: appendUpdate(make([]byte, 0, 160+len(u.Data)), u), at: time.Now()}
	it.delivery = u.Hunt + ":" + strconv.FormatUint(u.Epoch, 10) + ":" + strconv.FormatUint(u.Seq, 10)
	w.mu.Lock()
	if w.queued >= w.max {
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
	q, running := w.queues[u.Hunt]
	w.queues[u.Hunt] = append(q, it)
	w.queued++
	w.mu.Unlock()
	if !running {
		w.wg.Add(1)
		go w.run(u.Hunt)
	}
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
		if time.Since(it.at) > w.maxAge {
			w.expired.Add(1)
			w.log.Error().Str("delivery", it.delivery).Dur("age", time.Since(it.at)).Msg("gateway: webhook update older than --webhook-max-age dropped")
		} else if !w.deliver(&it) {
			return // stopping
		}
		w.mu.Lock()
		q = w.queues[hunt]
		q[0] = webhookItem{}
		w.queues[hunt] = q[1:]
		w.queued--
		w.mu.Unlock()
	}
}

// deliver POSTs it until a 2xx; false if the gateway stops first.
func (w *webhooks) deliver(it *webhookItem) bool {
	mac := hmac.New(sha256.New, w.secret)
	mac.Write(it.body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	for attempt := 0; ; attempt++ {
		if time.Since(it.at) > w.maxAge {
			w.expired.Add(1)
			w.log.Error().Str("delivery", it.delivery).Int("attempts", attempt).Msg("gateway: webhook update older than --webhook-max-age dropped")
			return true
		}
		w.attempts.Add(1)
		status, err := w.post(it, sig)
		if err == nil && status >= 200 && status < 300 {
			w.delivered.Add(1)
			return true
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
		t := time.NewTimer(d)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

func (w *webhooks) post(it *webhookItem, sig string) (int, error) {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(it.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Huntgate-Signature", sig)
	req.Header.Set("X-Huntgate-Delivery", it.delivery)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drained (a little) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// outbox returns the number of updates waiting for delivery.
func (w *webhooks) outbox() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// close stops the delivery goroutines; what is still queued is lost with
// the process, as the memory engine's hunts are.
func (w *webhooks) close() {
	w.cancel()
	w.wg.Wait()
}
