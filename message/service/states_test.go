package service

import "testing"

func TestAdvances(t *testing.T) {
	all := []string{Sent, Stored, Delivered, Read, Undeliverable, "", "later"}
	want := map[[2]string]bool{
		{Sent, Stored}: true, {Sent, Delivered}: true, {Sent, Read}: true, {Sent, Undeliverable}: true,
		{Stored, Delivered}: true, {Stored, Read}: true, {Stored, Undeliverable}: true,
		{Delivered, Read}: true,
	}
	for _, o := range all {
		for _, n := range all {
			if got := Advances(o, n); got != want[[2]string{o, n}] {
				t.Errorf("Advances(%q, %q) = %v, want %v", o, n, got, !got)
			}
		}
	}
	for _, s := range all {
		if got := Pending(s); got != (s == Sent || s == Stored) {
			t.Errorf("Pending(%q) = %v", s, got)
		}
	}
}
