package redisengine

import (
	"fmt"
	"os"
	"testing"

	"github.com/huntgate/huntgate/internal/redistest"
)

// redisURL is the URL of the redis-server that TestMain starts; a test
// uses its own db or key prefix.
var redisURL string

// standalone is that redis-server.
var standalone *redistest.Server

// TestMain runs the tests against a real redis-server on a free loopback
// port, without persistence, and stops it at the end.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	s, err := redistest.NewServer(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisengine:", err)
		return 1
	}
	defer s.Stop()
	defer stopSharedCluster()
	redisURL, standalone = s.URL(), s
	return m.Run()
}
