package service

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestBusyContactNotStored: bob is online and answers, but his quotas
// turn alice's frames away (busy: over his bytes of the day for her
// cell). Busy is not unreachable: bob is there, his quota only asks
// alice to wait. Her courier must not treat him as gone: no frame left
// in the blind mailbox alice → bob (a DHT write per pass, and a frame
// bob's reader refuses for the same quota) and no message recorded
// "stored" (doc: left in a blind mailbox for a contact that is away).
// Today deliverPending sees every device fail (errBusy like any error),
// calls mailboxStore, and the pending messages become "stored".
func TestBusyContactNotStored(t *testing.T) { bubble(t, testBusyContactNotStored) }

func testBusyContactNotStored(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	bob.tune = func(c *Config) { c.MaxInBytesPerContactPerDay = 8 << 10 }
	_ = bob.svc.Close()
	bob.start(t)
	n := floodUntilRefused(t, alice, "Bob")
	if n == 0 || bob.svc.Quota().RefusedContactDay == 0 {
		t.Fatalf("%d went; bob's quota %+v: want some, then refused for the day", n, bob.svc.Quota())
	}
	time.Sleep(time.Minute) // the courier's passes
	synctest.Wait()
	if f, _ := kinds(slotEntries(t, m, slotOf(t, alice, bob, 0))); f != 0 {
		t.Errorf("alice left %d frames in the mailbox of bob, who is online and busy", f)
	}
	stored := 0
	for _, msg := range alice.store.messages() {
		if msg.State == Stored {
			stored++
		}
	}
	if stored != 0 {
		t.Errorf("alice recorded %d messages stored to bob, who is online (busy)", stored)
	}
	_ = alice.svc.Close()
	_ = bob.svc.Close()
}
