package service

import (
	"bytes"
	"testing"
)

// FuzzDecodeQuotaRecord: any stored bytes are a quota record or an
// error, never a panic; a record that decodes encodes back to its bytes,
// and its lease is never negative.
func FuzzDecodeQuotaRecord(f *testing.F) {
	f.Add(encodeQuotaRecord(20_717, 64<<10))
	f.Add(encodeQuotaRecord(-1, 0))
	f.Add([]byte{})
	f.Add(append(encodeQuotaRecord(1, 2), 0))
	f.Add(bytes.Repeat([]byte{0xff}, quotaRecordSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		day, leased, err := decodeQuotaRecord(b)
		if err != nil {
			return
		}
		if leased < 0 {
			t.Fatalf("decoded a negative lease %d", leased)
		}
		if again := encodeQuotaRecord(day, leased); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to (%d, %d), which encodes to %x", b, day, leased, again)
		}
	})
}
