package contact

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestDeviceListRoundTrip(t *testing.T) {
	l := signedList(t, 1, 7, 10, 11, 12)
	got, err := DecodeDeviceList(l.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, got); diff != "" {
		t.Errorf("decoded list differs (-want +got):\n%s", diff)
	}
	if !got.Has(device(t, 11)) || got.Has(device(t, 13)) {
		t.Errorf("Has: wrong answers")
	}
}

func TestNewDeviceListSortsAndDedups(t *testing.T) {
	a, b := device(t, 1), device(t, 2)
	l := NewDeviceList(cellKey(1).Public().(ed25519.PublicKey), 1, []peer.ID{b, a, b})
	if len(l.Devices) != 2 || l.Devices[0] > l.Devices[1] {
		t.Errorf("devices %v: want two, sorted", l.Devices)
	}
}

func TestDeviceListRefused(t *testing.T) {
	good := signedList(t, 1, 3, 10, 11)
	tests := []struct {
		name string
		b    func() []byte
		want error
	}{
		{"empty", func() []byte { return nil }, ErrBadDeviceList},
		{"bad magic", func() []byte { b := good.Encode(); b[0] = 'X'; return b }, ErrBadDeviceList},
		{"truncated", func() []byte { b := good.Encode(); return b[:len(b)-1] }, ErrBadDeviceList},
		{"trailing", func() []byte { return append(good.Encode(), 0) }, ErrBadDeviceList},
		{"flipped version", func() []byte {
			l := *good
			l.Version++
			return l.Encode()
		}, ErrBadSignature},
		{"signed by another cell key", func() []byte {
			l := NewDeviceList(good.Cell, 3, good.Devices)
			l.Sig = ed25519.Sign(cellKey(2), append([]byte(deviceListContext), l.body()...))
			return l.Encode()
		}, ErrBadSignature},
		{"no domain separation", func() []byte {
			l := NewDeviceList(good.Cell, 3, good.Devices)
			l.Sig = ed25519.Sign(cellKey(1), l.body())
			return l.Encode()
		}, ErrBadSignature},
		{"no devices", func() []byte {
			l := &DeviceList{Cell: good.Cell, Version: 3}
			l.Sig = ed25519.Sign(cellKey(1), append([]byte(deviceListContext), l.body()...))
			return l.Encode()
		}, ErrBadDeviceList},
		{"unsorted", func() []byte {
			l := &DeviceList{Cell: good.Cell, Version: 3, Devices: []peer.ID{good.Devices[1], good.Devices[0]}}
			l.Sig = ed25519.Sign(cellKey(1), append([]byte(deviceListContext), l.body()...))
			return l.Encode()
		}, ErrBadDeviceList},
		{"not a peer ID", func() []byte {
			l := &DeviceList{Cell: good.Cell, Version: 3, Devices: []peer.ID{"nope"}}
			l.Sig = ed25519.Sign(cellKey(1), append([]byte(deviceListContext), l.body()...))
			return l.Encode()
		}, ErrBadDeviceList},
		{"too many devices", func() []byte {
			b := []byte(deviceListMagic)
			b = appendBytes(b, good.Cell)
			b = append(b, 3, 200, 1) // version 3, 200 devices
			return b
		}, ErrBadDeviceList},
		{"over the length cap", func() []byte { return make([]byte, MaxDeviceListLen+1) }, ErrBadDeviceList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeDeviceList(tt.b())
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignRefusesOtherKey(t *testing.T) {
	l := NewDeviceList(cellKey(1).Public().(ed25519.PublicKey), 1, []peer.ID{device(t, 1)})
	if err := l.Sign(cellKey(2)); err == nil {
		t.Fatal("signed with another cell's key")
	}
	tooMany := make([]peer.ID, MaxDevices+1)
	for i := range tooMany {
		tooMany[i] = device(t, byte(i))
	}
	l = NewDeviceList(cellKey(1).Public().(ed25519.PublicKey), 1, tooMany)
	if err := l.Sign(cellKey(1)); !errors.Is(err, ErrBadDeviceList) {
		t.Fatalf("signed %d devices: %v", len(l.Devices), err)
	}
}

func TestNewer(t *testing.T) {
	v3 := signedList(t, 1, 3, 10, 11)
	v4 := signedList(t, 1, 4, 10)
	v3other := signedList(t, 1, 3, 10, 12)
	tests := []struct {
		name      string
		old, next *DeviceList
		replace   bool
		err       error
	}{
		{"higher version wins", v3, v4, true, nil},
		{"lower version refused", v4, v3, false, ErrStale},
		{"same list, nothing to do", v3, signedList(t, 1, 3, 11, 10), false, nil},
		{"same version, other devices", v3, v3other, false, ErrConflict},
		{"other cell", v3, signedList(t, 2, 9, 10), false, ErrOtherCell},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replace, err := Newer(tt.old, tt.next)
			if replace != tt.replace || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Newer = %v, %v; want %v, %v", replace, err, tt.replace, tt.err)
			}
		})
	}
	if !bytes.Equal(v3.Encode(), signedList(t, 1, 3, 10, 11).Encode()) {
		t.Error("signing is not deterministic: equal lists differ")
	}
}
