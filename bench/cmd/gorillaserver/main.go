// Command gorillaserver is the goroutine-per-connection baseline for huntload:
// /echo and /fanout on gorilla/websocket.
package main

import (
	"flag"
	"net/http"
	"os"
	"time"

	"github.com/huntgate/huntgate/bench/internal/baseline"
	"github.com/rs/zerolog"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address host:port")
	flag.Parse()
	log := zerolog.New(os.Stderr).With().Timestamp().Str("server", "gorilla").Logger()
	srv := &http.Server{Addr: *addr, Handler: baseline.NewGorilla(log), ReadHeaderTimeout: 5 * time.Second}
	log.Info().Str("addr", *addr).Msg("listening")
	if err := srv.ListenAndServe(); err != nil {
		log.Fatal().Err(err).Msg("serve")
	}
}
