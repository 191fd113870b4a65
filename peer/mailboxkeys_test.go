package peer

import (
	"bytes"
	"crypto/ecdh"
	"slices"
	"testing"
	"time"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message/mailbox"
)

// TestPickMailboxKeys: the writer's key (first) is the newest a list
// carried, not the current epoch's before a list carried it; then the
// keys a list carried that were in force within the last 7 days, newest
// first; none replaced earlier, none never carried; at most 4.
func TestPickMailboxKeys(t *testing.T) {
	now := time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	key := func(e uint64) *ecdh.PrivateKey {
		k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{byte(e)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mk := func(e uint64, since, until time.Duration, current bool) contactservice.MailboxKey {
		k := contactservice.MailboxKey{Epoch: e, Private: key(e), Current: current}
		if since > 0 {
			k.Since = now.Add(-since)
		}
		if until > 0 {
			k.Until = now.Add(-until)
		}
		return k
	}
	tests := []struct {
		name string
		ks   []contactservice.MailboxKey
		want []uint64
	}{
		{"one", []contactservice.MailboxKey{mk(1, day, 0, true)}, []uint64{1}},
		{"current not carried yet", []contactservice.MailboxKey{mk(1, 30*day, 0, false), mk(2, 0, 0, true)}, []uint64{1}},
		{"none carried", []contactservice.MailboxKey{mk(1, 0, 0, false), mk(2, 0, 0, true)}, []uint64{2}},
		{"replaced within 7 days", []contactservice.MailboxKey{mk(1, 30*day, 3*day, false), mk(2, 3*day, 0, true)}, []uint64{2, 1}},
		{"replaced 8 days ago", []contactservice.MailboxKey{mk(1, 30*day, 8*day, false), mk(2, 8*day, 0, true)}, []uint64{2}},
		{"at most 4", []contactservice.MailboxKey{
			mk(1, 9*day, 6*day, false), mk(2, 6*day, 5*day, false), mk(3, 5*day, 4*day, false),
			mk(4, 4*day, 3*day, false), mk(5, 3*day, 0, true),
		}, []uint64{5, 4, 3, 2}},
	}
	for _, tt := range tests {
		got, err := pickMailboxKeys(tt.ks, now)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var want []*ecdh.PrivateKey
		for _, e := range tt.want {
			want = append(want, key(e))
		}
		if !slices.EqualFunc(got, want, func(a, b *ecdh.PrivateKey) bool { return a.Equal(b) }) {
			t.Errorf("%s: %d keys, want epochs %v", tt.name, len(got), tt.want)
		}
	}
	if mailbox.Retention != 7*day {
		t.Fatal("the rule's 7 days are mailbox.Retention")
	}
	if _, err := pickMailboxKeys(nil, now); err == nil {
		t.Fatal("no keys: no error")
	}
}
