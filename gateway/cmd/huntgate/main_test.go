package main

import "testing"

func TestRunRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"--redis", "redis://127.0.0.1:1", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, 1},
		{[]string{"--loops", "many"}, 2},
		{[]string{"--addr", "127.0.0.1:0", "--admin-addr", "256.0.0.1:1"}, 1},
	} {
		if got := run(tc.args); got != tc.want {
			t.Errorf("run %v = %d, want %d", tc.args, got, tc.want)
		}
	}
}
