package measure

// GapStats counts what seq accounting found for a set of players.
type GapStats struct {
	Updates      int64 `json:"updates"`       // reliable updates received
	Gaps         int64 `json:"gaps"`          // reliable updates missing (seq jumped by more than 1)
	Dups         int64 `json:"dups"`          // reliable updates received twice or out of order
	Resets       int64 `json:"resets"`        // rejoins answered with reset instead of a replay
	Replayed     int64 `json:"replayed"`      // updates replayed after a rejoin with since
	EpochChanges int64 `json:"epoch_changes"` // updates that arrived in a new epoch without a reset
}

// Add adds o to g.
func (g *GapStats) Add(o GapStats) {
	g.Updates += o.Updates
	g.Gaps += o.Gaps
	g.Dups += o.Dups
	g.Resets += o.Resets
	g.Replayed += o.Replayed
	g.EpochChanges += o.EpochChanges
}

// SeqState is what one player knows about one hunt's update stream: the
// epoch and the last reliable seq seen. Within an epoch reliable seqs must
// increase by exactly 1; a new epoch or a reset is a fresh start, not a gap.
// The zero value knows nothing.
type SeqState struct {
	Epoch uint64 // hash of the epoch as sent
	Seq   int64
	Known bool
}

// Joined accounts a `joined` reply. A reset replaces what the player knew
// (counted as a reset if it had something to resume from); a replay keeps
// the old position because the replayed updates follow and fill it up.
func (s *SeqState) Joined(epoch uint64, seq int64, reset bool, replayed int64, g *GapStats) {
	if reset || !s.Known {
		if reset && s.Known {
			g.Resets++
		}
		s.Epoch, s.Seq, s.Known = epoch, seq, true
		return
	}
	g.Replayed += replayed
}

// Update accounts one reliable update (claimed, event, ended, started) and reports
// whether it is new to the player, false for a duplicate. Latest-value
// updates (leaderboard) carry the seq of the last reliable update and must
// not be passed here.
func (s *SeqState) Update(epoch uint64, seq int64, g *GapStats) bool {
	g.Updates++
	switch {
	case !s.Known:
		s.Epoch, s.Seq, s.Known = epoch, seq, true
	case epoch != s.Epoch:
		g.EpochChanges++
		s.Epoch, s.Seq = epoch, seq
	case seq == s.Seq+1:
		s.Seq = seq
	case seq <= s.Seq:
		g.Dups++
		return false
	default:
		g.Gaps += seq - s.Seq - 1
		s.Seq = seq
	}
	return true
}
