package core

import "testing"

// TestValidName: a member or cell name is 1 to MaxNameLen bytes of
// UTF-8 without control characters (C0, DEL, C1) or the bidi controls
// that reorder how a line reads (embeddings, overrides, isolates and
// marks), so that no name can spoof how a member list looks.
func TestValidName(t *testing.T) {
	long := make([]byte, MaxNameLen+1)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"plain", "laptop", true},
		{"spaces and punctuation", "Anna's phone (old)", true},
		{"non-ASCII letters", "Zoë’s téléphone", true},
		{"CJK", "携帯電話", true},
		{"emoji", "phone 📱", true},
		{"longest", string(long[:MaxNameLen]), true},
		{"empty", "", false},
		{"too long", string(long), false},
		{"invalid UTF-8", "a\xffb", false},
		{"NUL", "a\x00b", false},
		{"newline", "a\nb", false},
		{"escape", "a\x1b[31mb", false},
		{"DEL", "a\x7fb", false},
		{"C1 first", "a\u0080b", false},
		{"C1 CSI", "a\u009b31mb", false},
		{"C1 last", "a\u009fb", false},
		{"just above C1", "a\u00a0b", true},
		{"LRE", "a\u202ab", false},
		{"RLE", "a\u202bb", false},
		{"PDF", "a\u202cb", false},
		{"LRO", "a\u202db", false},
		{"RLO", "evil\u202egpj.exe", false},
		{"LRI", "a\u2066b", false},
		{"RLI", "a\u2067b", false},
		{"FSI", "a\u2068b", false},
		{"PDI", "a\u2069b", false},
		{"LRM", "a\u200eb", false},
		{"RLM", "a\u200fb", false},
		{"ALM", "a\u061cb", false},
		{"line separator", "a\u2028b", false},
		{"paragraph separator", "a\u2029b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidName(tt.in); got != tt.want {
				t.Errorf("ValidName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
