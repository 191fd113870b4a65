package ratchet

import (
	"fmt"
	"testing"
)

// Size is the length MarshalBinary returns, with 0 to MaxSkippedKeys
// skipped keys, in both directions, before and after DH steps, as keys
// are skipped and used; and a restored session's is the same.
func TestSize(t *testing.T) {
	c := newConv(t, 21)
	check := func(what string, skipped map[string]int) {
		t.Helper()
		for name, s := range c.p {
			b := sessionBytes(t, s)
			if s.Size() != len(b) {
				t.Fatalf("%s: %s's Size = %d, MarshalBinary %d bytes", what, name, s.Size(), len(b))
			}
			if n, ok := skipped[name]; ok && len(s.skipped) != n {
				t.Fatalf("%s: %s keeps %d skipped keys, want %d", what, name, len(s.skipped), n)
			}
			if r := restore(t, b); r.Size() != len(b) {
				t.Fatalf("%s: %s restored: Size = %d, MarshalBinary %d bytes", what, name, r.Size(), len(b))
			}
		}
	}
	check("new", map[string]int{"a": 0, "b": 0})
	// chain sends n messages from one party to the other, which opens the
	// last (n-1 skipped) and answers (a DH step each way).
	k := 0
	chain := func(from, to string, n int) (ls []string) {
		k++
		for i := range n {
			ls = append(ls, fmt.Sprintf("c%d.%d", k, i))
		}
		c.send(from, ls...)
		c.open(to, ls[n-1])
		r := fmt.Sprint("r", k)
		c.send(to, r)
		c.open(from, r)
		return ls
	}
	chain("a", "b", 1)
	check("no key skipped", map[string]int{"a": 0, "b": 0})
	chain("a", "b", 2)
	check("one skipped", map[string]int{"b": 1})
	c3 := chain("b", "a", MaxSkip+1)
	check("the other way", map[string]int{"a": MaxSkip, "b": 1})
	c4 := chain("a", "b", MaxSkip+1)
	c5 := chain("a", "b", MaxSkip)
	check("full", map[string]int{"b": MaxSkippedKeys})
	c6 := chain("a", "b", 11) // 10 more: the oldest (c2's, c4's first 9) dropped
	check("past full", map[string]int{"b": MaxSkippedKeys})
	c.open("b", c4[9], c4[500], c5[0], c6[0])
	check("skipped keys used", map[string]int{"b": MaxSkippedKeys - 4})
	c.open("a", c3[0], c3[MaxSkip-1])
	check("skipped keys used the other way", map[string]int{"a": MaxSkip - 2})
	c.open("b", c4[10:500]...)
	c.open("b", c4[501:MaxSkip]...)
	check("a chain's keys used", map[string]int{"b": 998 + 9}) // c5's and c6's left
}
