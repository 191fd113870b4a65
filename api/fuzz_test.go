package api

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// FuzzDuration feeds any bytes to Duration's decoder: it decodes or says
// why not, never panics, and what it decodes marshals again to seconds
// that decode to within a millisecond of it.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"0", "1.5", "600.000", "-3", "1e3", "NaN", "\"10s\"", "null", "", "99999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Duration
		if err := d.UnmarshalJSON(b); err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal %v: %v", time.Duration(d), err)
		}
		var back Duration
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s does not decode: %v", out, err)
		}
		if diff := math.Abs(float64(back - d)); diff > float64(time.Millisecond) && diff/math.Abs(float64(d)) > 1e-9 {
			t.Fatalf("%s → %v → %s → %v", b, time.Duration(d), out, time.Duration(back))
		}
	})
}
