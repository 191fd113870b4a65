package datadir

import "testing"

func TestResourceConfigValidate(t *testing.T) {
	if errs := (ResourceConfig{MemoryMiB: 8, PeerStreams: -1}).validate(); len(errs) != 2 {
		t.Errorf("validate = %v, want two errors", errs)
	}
	if errs := (ResourceConfig{}).WithDefaults().validate(); len(errs) != 0 {
		t.Errorf("the defaults do not validate: %v", errs)
	}
}
