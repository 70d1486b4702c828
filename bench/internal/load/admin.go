package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// admin talks to the gateway's admin listener.
type admin struct {
	base, key string
	hc        *http.Client
}

func newAdmin(base, key string) *admin {
	return &admin{base: base, key: key, hc: &http.Client{
		Timeout: 10 * time.Second,
		// Keep-alive connections for every concurrent publisher, so that a
		// publish never pays a TCP handshake.
		Transport: &http.Transport{MaxIdleConns: publishers, MaxIdleConnsPerHost: publishers, MaxConnsPerHost: publishers, IdleConnTimeout: time.Minute},
	}}
}

func (a *admin) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.key != "" {
		req.Header.Set("X-API-Key", a.key)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// ensureHunt creates hunt id with random treasures unless it exists.
func (a *admin) ensureHunt(ctx context.Context, id string, grid, treasures int, seed int) error {
	code, _, err := a.do(ctx, http.MethodGet, "/v1/hunts/"+id, nil)
	if err == nil && code == http.StatusOK {
		return nil
	}
	body := fmt.Sprintf(`{"id":%q,"width":%d,"height":%d,"random":{"count":%d,"seed":%d,"max_points":100}}`,
		id, grid, grid, treasures, seed)
	code, resp, err := a.do(ctx, http.MethodPost, "/v1/hunts", []byte(body))
	if err != nil {
		return fmt.Errorf("load: create hunt %s: %w", id, err)
	}
	if code/100 != 2 && code != http.StatusConflict {
		return fmt.Errorf("load: create hunt %s: HTTP %d: %s", id, code, bytes.TrimSpace(resp))
	}
	return nil
}

// publish posts one stamped event to hunt id.
func (a *admin) publish(ctx context.Context, id string, msgID int64, step int, sentNs int64) error {
	code, resp, err := a.do(ctx, http.MethodPost, "/v1/hunts/"+id+"/events", []byte(stampData(sentNs, msgID, step)))
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("load: publish: HTTP %d: %s", code, bytes.TrimSpace(resp))
	}
	return nil
}
