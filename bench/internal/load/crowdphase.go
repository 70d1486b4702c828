package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Steps of crowd's event phase, ahead of the dig phase's events.
const (
	stepEvent = 0 // one event to every hunt, players held, nothing else sent
	stepFloor = 1 // the same players, one plain broadcast of the same size
)

// crowdPhase is what the event phase sent, for the report.
type crowdPhase struct {
	sent []int64 // per step: stamped messages sent (0 or 1)
	// receivers is the players connected when the phase began (the
	// workers' ready counts): each step is expected to reach them. Players
	// still dialling then (a dial that failed is retried in crowd) may
	// join later and miss it; the dig phase's steps count the players
	// connected when it starts instead.
	receivers int64
	bytes     []int  // per step: the message's size as players get it
	floorErr  string // why the floor broadcast did not go out everywhere, if so
}

// eventPhase runs crowd's event phase between the connect phase and the
// dig phase, while every player is held and nothing else is sent: one
// stamped event published to every hunt at once (each player is in one
// hunt, so each gets it once), then, with FloorNodes, its floor: one plain
// broadcast of the same size from every node's POST /v1/test/broadcast,
// over the same sockets, without the hunt engine. Each step waits until
// the workers counted a receipt from every connected player, or EventWait
// passed. Worker messages are consumed meanwhile (ticks go to agg).
func eventPhase(cfg Config, adm *admin, all <-chan Msg, agg *aggregator, connected int64, log zerolog.Logger) (*crowdPhase, error) {
	ph := &crowdPhase{sent: make([]int64, 2), bytes: make([]int, 2), receivers: connected}
	hunts := make([]string, cfg.Hunts)
	for i := range hunts {
		hunts[i] = cfg.HuntID + "-" + strconv.Itoa(i)
	}
	ctx := context.Background()

	t0 := time.Now().UnixNano()
	errs := make([]error, len(hunts))
	var wg sync.WaitGroup
	for i, h := range hunts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = adm.publish(ctx, h, stepEvent<<20, stepEvent, t0)
		}()
	}
	wg.Wait()
	published := true
	for _, err := range errs {
		if err != nil {
			log.Error().Err(err).Msg("load: event phase: publish")
			published = false
		}
	}
	if published {
		ph.sent[stepEvent] = 1
	}
	ph.bytes[stepEvent] = eventSize(ctx, adm, hunts[0], stampData(t0, stepEvent<<20, stepEvent))
	if err := waitDelivered(all, agg, stepEvent, connected, cfg.EventWait); err != nil {
		return nil, err
	}
	if cfg.FloorNodes <= 0 {
		return ph, nil
	}

	admins, err := nodeAdmins(cfg.Admin, cfg.FloorNodes)
	if err != nil {
		return nil, err
	}
	t1 := time.Now().UnixNano()
	body := floorMsg(stampData(t1, stepFloor<<20, stepFloor), ph.bytes[stepEvent])
	ph.bytes[stepFloor] = len(body)
	var mu sync.Mutex
	var failed []string
	for _, base := range admins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &admin{base: base, key: adm.key, hc: adm.hc}
			code, resp, err := a.do(ctx, http.MethodPost, "/v1/test/broadcast", body)
			if err == nil && code/100 != 2 {
				err = fmt.Errorf("HTTP %d: %s", code, strings.TrimSpace(string(resp)))
			}
			if err != nil {
				mu.Lock()
				failed = append(failed, base+": "+err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		ph.floorErr = fmt.Sprintf("%d of %d nodes: %s", len(failed), len(admins), failed[0])
		log.Error().Str("err", ph.floorErr).Msg("load: event phase: floor broadcast")
	}
	if len(failed) < len(admins) {
		ph.sent[stepFloor] = 1
	}
	if err := waitDelivered(all, agg, stepFloor, connected, cfg.EventWait); err != nil {
		return nil, err
	}
	return ph, nil
}

// stampData is the data of a stamped broadcast (see admin.publish and parseStamp).
func stampData(sentNs, id int64, step int) string {
	return `{"t":` + strconv.FormatInt(sentNs, 10) + `,"i":` + strconv.FormatInt(id, 10) + `,"s":` + strconv.Itoa(step) + `}`
}

// eventSize is the size of the event with data as a player of hunt gets it
// ({"op":"update","hunt":..,"epoch":..,"seq":..,"kind":"event","data":..}),
// with the hunt's epoch and seq from its status; with no status, a 13-digit
// epoch and a 2-digit seq.
func eventSize(ctx context.Context, adm *admin, hunt, data string) int {
	epoch, seq := "1000000000000", "10"
	if code, b, err := adm.do(ctx, http.MethodGet, "/v1/hunts/"+hunt, nil); err == nil && code == http.StatusOK {
		var st map[string]json.RawMessage
		if json.Unmarshal(b, &st) == nil && len(st["epoch"]) > 0 && len(st["seq"]) > 0 {
			epoch, seq = string(st["epoch"]), string(st["seq"])
		}
	}
	return len(`{"op":"update","hunt":"` + hunt + `","epoch":` + epoch + `,"seq":` + seq + `,"kind":"event","data":` + data + `}`)
}

// floorMsg is the floor broadcast: {"op":"bcast","data":STAMP,"pad":"xx.."}
// padded to size bytes (when it fits).
func floorMsg(data string, size int) []byte {
	b := []byte(`{"op":"bcast","data":` + data + `,"pad":"`)
	for len(b)+2 < size {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// nodeAdmins is the admin base URL of nodes 0..n-1: base's port + i.
func nodeAdmins(base string, n int) ([]string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Port() == "" {
		return nil, fmt.Errorf("load: --floor-nodes needs --admin with a port, got %q", base)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, fmt.Errorf("load: --admin port: %w", err)
	}
	out := make([]string, n)
	for i := range out {
		v := *u
		v.Host = u.Hostname() + ":" + strconv.Itoa(port+i)
		out[i] = strings.TrimSuffix(v.String(), "/")
	}
	return out, nil
}

// waitDelivered consumes worker messages until the workers' latest ticks
// count want receipts of step, or wait passed (then the step's report shows
// what is missing). A worker error fails the run.
func waitDelivered(all <-chan Msg, agg *aggregator, step int, want int64, wait time.Duration) error {
	name := cDelivered + pad2(step)
	deadline := time.After(wait)
	for {
		if agg.counterSum(name) >= want {
			return nil
		}
		select {
		case m, ok := <-all:
			if !ok {
				return fmt.Errorf("load: workers exited in the event phase")
			}
			switch m.Type {
			case "tick":
				agg.tick(m)
			case "error":
				return fmt.Errorf("load: worker %d: %s", m.Worker, m.Err)
			}
		case <-deadline:
			return nil
		}
	}
}
