// Command huntload is huntgate's load generator: it simulates players over
// many connections and worker processes and reports latency histograms,
// delivery and server resource use. Run `huntload --help`.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/huntgate/huntgate/bench/internal/load"
	"github.com/rs/zerolog"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		log := zerolog.New(os.Stderr).With().Timestamp().Str("role", "worker").Logger().Level(zerolog.WarnLevel)
		if lv := os.Getenv("HUNTLOAD_LOG_LEVEL"); lv != "" {
			if l, err := zerolog.ParseLevel(lv); err == nil {
				log = log.Level(l)
			}
		}
		if err := load.ServeWorker(os.Stdin, os.Stdout, log); err != nil {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "summary" {
		os.Exit(summary(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

// summary is the hidden "summary DIR BASELINE SERVER..." subcommand used by
// scripts/bench.sh: one table of the suite's metrics with ratios to the
// baseline, also written to DIR/summary.json.
func summary(args []string) int {
	var tests []string
	out := "summary.json"
	if len(args) > 1 && args[0] == "--tests" {
		tests = strings.Split(args[1], ",")
		out = "summary-" + strings.ReplaceAll(args[1], ",", "-") + ".json"
		args = args[2:]
	}
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: huntload summary [--tests T1,T2] DIR BASELINE SERVER...")
		return 2
	}
	vals, err := load.SuiteSummaryOf(args[0], args[1], args[2:], tests, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.MarshalIndent(vals, "", "  ")
	if err := os.WriteFile(filepath.Join(args[0], out), append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func run(args []string) int {
	// HUNTLOAD_CPUPROFILE profiles this process (and in-process workers),
	// to check that the load generator is not what limits a run.
	if path := os.Getenv("HUNTLOAD_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	// HUNTLOAD_MEMPROFILE writes an allocation profile at exit, to keep the
	// per-message receive path allocation-free (GC work preempts the loops).
	if path := os.Getenv("HUNTLOAD_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	cmd, err := load.ParseArgs(args, os.Stderr)
	if errors.Is(err, load.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lvl, err := zerolog.ParseLevel(cmd.LogLevel)
	if err != nil {
		lvl = zerolog.WarnLevel
	}
	os.Setenv("HUNTLOAD_LOG_LEVEL", lvl.String())
	log := zerolog.New(os.Stderr).With().Timestamp().Logger().Level(lvl)
	exe := ""
	if cmd.Config.Procs > 1 {
		if exe, err = os.Executable(); err != nil {
			fmt.Fprintln(os.Stderr, "huntload: cannot find own executable for workers:", err)
			return 1
		}
	}
	opt := load.Options{Exec: exe, Progress: os.Stderr, Logger: log}
	if cmd.Scenario == load.Compare {
		cr, err := load.RunCompare(cmd, opt, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cr.WriteTable(os.Stdout)
		if cmd.JSON != "" {
			if err := cr.WriteJSON(cmd.JSON); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		if cmd.HTML != "" {
			if err := cr.WriteHTML(cmd.HTML); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return 0
	}
	rep, err := load.Run(cmd.Config, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep.WriteTable(os.Stdout)
	if cmd.JSON != "" {
		if err := rep.WriteJSON(cmd.JSON); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if cmd.HTML != "" {
		if err := rep.WriteHTML(cmd.HTML); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
