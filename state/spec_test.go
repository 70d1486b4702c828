package state

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSpecValidate(t *testing.T) {
	ok := Spec{ID: "h1", Width: 4, Height: 3, Treasures: []Treasure{{ID: "a", X: 3, Y: 2, Points: 5}, {ID: "b", X: 0, Y: 0}}}
	tests := []struct {
		name string
		mut  func(s *Spec)
		bad  string // substring of the error, "" for valid
	}{
		{"valid list", func(*Spec) {}, ""},
		{"valid random", func(s *Spec) { s.Treasures = nil; s.Random = &RandomSpec{Count: 12, Seed: 1, MaxPoints: 3} }, ""},
		{"valid empty", func(s *Spec) { s.Treasures = nil }, ""},
		{"empty id", func(s *Spec) { s.ID = "" }, "id"},
		{"long id", func(s *Spec) { s.ID = strings.Repeat("a", 65) }, "id"},
		{"id with slash", func(s *Spec) { s.ID = "a/b" }, "id"},
		{"zero width", func(s *Spec) { s.Width = 0 }, "width"},
		{"negative height", func(s *Spec) { s.Height = -1 }, "width"},
		{"huge grid side", func(s *Spec) { s.Width = MaxGridSide + 1 }, "width"},
		{"both layouts", func(s *Spec) { s.Random = &RandomSpec{Count: 1, MaxPoints: 1} }, "exclusive"},
		{"random too many", func(s *Spec) { s.Treasures = nil; s.Random = &RandomSpec{Count: 13, MaxPoints: 1} }, "exceeds"},
		{"random negative", func(s *Spec) { s.Treasures = nil; s.Random = &RandomSpec{Count: -1, MaxPoints: 1} }, "count"},
		{"random no points", func(s *Spec) { s.Treasures = nil; s.Random = &RandomSpec{Count: 1} }, "max_points"},
		{"off grid x", func(s *Spec) { s.Treasures[0].X = 4 }, "off the grid"},
		{"off grid y", func(s *Spec) { s.Treasures[0].Y = -1 }, "off the grid"},
		{"same cell", func(s *Spec) { s.Treasures[1].X, s.Treasures[1].Y = 3, 2 }, "shares cell"},
		{"same id", func(s *Spec) { s.Treasures[1].ID = "a" }, "twice"},
		{"bad treasure id", func(s *Spec) { s.Treasures[1].ID = "" }, "id"},
		{"negative points", func(s *Spec) { s.Treasures[1].Points = -1 }, "points"},
		{"too many points", func(s *Spec) { s.Treasures[1].Points = MaxPoints + 1 }, "points"},
		{"random too many points", func(s *Spec) { s.Treasures = nil; s.Random = &RandomSpec{Count: 1, MaxPoints: MaxPoints + 1} }, "max_points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			s.Treasures = append([]Treasure(nil), ok.Treasures...)
			tt.mut(&s)
			err := s.Validate()
			if tt.bad == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tt.bad) {
				t.Fatalf("error %v, want ErrBadSpec mentioning %q", err, tt.bad)
			}
		})
	}
}

func TestRandomLayout(t *testing.T) {
	for _, tc := range []struct {
		name          string
		width, height int
		count         int
	}{
		{"dense full", 8, 8, 64},
		{"dense", 10, 10, 30},
		{"sparse", 1000, 1000, 5000},
		{"none", 5, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Spec{ID: "r", Width: tc.width, Height: tc.height, Random: &RandomSpec{Count: tc.count, Seed: 42, MaxPoints: 9}}
			a, err := s.Layout()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := s.Layout()
			if !reflect.DeepEqual(a, b) {
				t.Fatal("same seed gave two layouts")
			}
			if len(a) != tc.count {
				t.Fatalf("%d treasures, want %d", len(a), tc.count)
			}
			fixed := Spec{ID: "r", Width: tc.width, Height: tc.height, Treasures: a}
			if err := fixed.Validate(); err != nil { // distinct ids and cells, on the grid
				t.Fatalf("random layout is not a valid fixed layout: %v", err)
			}
			for _, tr := range a {
				if tr.Points < 1 || tr.Points > 9 {
					t.Fatalf("treasure %s has %d points", tr.ID, tr.Points)
				}
			}
			s.Random.Seed = 43
			c, _ := s.Layout()
			if tc.count > 1 && reflect.DeepEqual(a, c) {
				t.Fatal("another seed gave the same layout")
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for _, s := range []string{"a", "A-z_0.9", strings.Repeat("x", MaxIDLen)} {
		if !ValidID(s) {
			t.Errorf("ValidID(%q) = false", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("x", MaxIDLen+1), "a b", "a/b", "a|b", "é", "a\x00"} {
		if ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}
