package baseline

import "time"

// closeWait bounds how long a close frame may take to write.
const closeWait = time.Second

func timeNowPlus(d time.Duration) time.Time { return time.Now().Add(d) }
