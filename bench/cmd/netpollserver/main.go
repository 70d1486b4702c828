// Command netpollserver is the cloudwego/netpoll + gobwas/ws baseline for
// huntload: /echo and /fanout.
package main

import (
	"flag"
	"os"

	"github.com/huntgate/huntgate/bench/internal/baseline"
	"github.com/rs/zerolog"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address host:port")
	flag.Parse()
	log := zerolog.New(os.Stderr).With().Timestamp().Str("server", "netpoll").Logger()
	s, err := baseline.NewNetpoll(log)
	if err != nil {
		log.Fatal().Err(err).Msg("init")
	}
	ln, err := baseline.Listen(*addr)
	if err != nil {
		log.Fatal().Err(err).Msg("listen")
	}
	log.Info().Str("addr", *addr).Msg("listening")
	if err := s.Serve(ln); err != nil {
		log.Fatal().Err(err).Msg("serve")
	}
}
