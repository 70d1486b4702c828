package load

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// slowReadEvery is how long a slow reader pauses after each message: it
// takes at most 20 messages a second, far less than a busy hunt pushes.
const slowReadEvery = 50 * time.Millisecond

// slowReaders runs the game scenario's few slow players until end: each
// dials with a tiny receive buffer, joins its hunt and then reads one
// message per slowReadEvery, so the gateway's per-connection queue fills
// and its slow-consumer policy (close 1008 "slow") shows in the counters.
// They are a handful, so a goroutine each is fine here.
func (w *worker) slowReaders(n int, end time.Time) *sync.WaitGroup {
	var wg sync.WaitGroup
	sh := w.rec.Shard(0)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "slow" + strconv.Itoa(w.cfg.Worker) + "-" + strconv.Itoa(i)
			hunt := w.cfg.HuntID + "-" + strconv.Itoa(i%w.cfg.Hunts)
			nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				if err != nil {
					return err
				}
				return serr
			}}
			d := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024}
			c, _, err := d.Dial("ws://"+w.cfg.HostPort()+"/ws?"+w.token(id), http.Header{})
			if err != nil {
				sh.Add("slow_dial_failed", 1)
				return
			}
			defer c.Close()
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"join","hunt":"`+hunt+`"}`)); err != nil {
				sh.Add("slow_dial_failed", 1)
				return
			}
			_ = c.SetReadDeadline(end)
			for {
				_, _, err := c.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						sh.Add("slow_close_"+strconv.Itoa(ce.Code), 1)
					}
					return
				}
				sh.Add("slow_msgs", 1)
				if time.Until(end) < slowReadEvery {
					return
				}
				time.Sleep(slowReadEvery)
			}
		}()
	}
	return &wg
}
