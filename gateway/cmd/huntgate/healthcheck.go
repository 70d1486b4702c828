package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/huntgate/huntgate/gateway"
)

// healthcheck is `huntgate healthcheck`: exit 0 when the admin listener's
// /healthz answers 200 within the timeout, 1 otherwise (2 for bad flags).
// It exists for container health checks: the distroless image has no curl
// or shell. The admin address comes from --admin-addr, else
// HUNTGATE_ADMIN_ADDR (what the server itself reads), else the server's
// default; a wildcard host (":8081", "0.0.0.0:8081") is checked on loopback.
func healthcheck(args []string, lookupEnv func(string) (string, bool), out io.Writer) int {
	fs := flag.NewFlagSet("huntgate healthcheck", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := "127.0.0.1:8081"
	if v, ok := lookupEnv(gateway.EnvName("admin-addr")); ok && v != "" {
		addr = v
	}
	fs.StringVar(&addr, "admin-addr", addr, "the gateway's admin listener host:port (default: $"+gateway.EnvName("admin-addr")+", else 127.0.0.1:8081)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	url, err := healthURL(addr)
	if err != nil {
		fmt.Fprintln(out, "huntgate healthcheck:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(out, "huntgate healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(out, "huntgate healthcheck:", err)
		return 1
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "huntgate healthcheck: %s answered %d\n", url, resp.StatusCode)
		return 1
	}
	return 0
}

// healthURL is the /healthz URL of an admin listener address.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
