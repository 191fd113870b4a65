package store

import (
	"errors"
	"strings"
	"testing"
)

func TestParseWhere(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Predicate
	}{
		{"equality", "tags=work", Predicate{"tags", Eq, "work"}},
		{"less", "n<3", Predicate{"n", Lt, "3"}},
		{"less or equal wins over less", "n<=3", Predicate{"n", Le, "3"}},
		{"greater", "n>-1.5e3", Predicate{"n", Gt, "-1.5e3"}},
		{"greater or equal wins over greater", "a>=3", Predicate{"a", Ge, "3"}},
		{"prefix", "title^=Gro", Predicate{"title", Prefix, "Gro"}},
		{"time", "when<2026-01-01T00:00:00Z", Predicate{"when", Lt, "2026-01-01T00:00:00Z"}},
		{"value with equals", "q=a=b", Predicate{"q", Eq, "a=b"}},
		{"value starting with equals", "q==b", Predicate{"q", Eq, "=b"}},
		{"value after le starting with equals", "q<==", Predicate{"q", Le, "="}},
		{"value with spaces kept", "title= two words ", Predicate{"title", Eq, " two words "}},
		{"empty value", "tags=", Predicate{"tags", Eq, ""}},
		{"field punctuation", "a.b_c-d9=x", Predicate{"a.b_c-d9", Eq, "x"}},
		{"unicode field", "título^=é", Predicate{"título", Prefix, "é"}},
		{"digits only field", "42=x", Predicate{"42", Eq, "x"}},
		{"longest field", strings.Repeat("f", MaxField) + "=1", Predicate{strings.Repeat("f", MaxField), Eq, "1"}},
		{"longest input", "f=" + strings.Repeat("v", MaxWhere-2), Predicate{"f", Eq, strings.Repeat("v", MaxWhere-2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWhere(tt.in)
			if err != nil {
				t.Fatalf("ParseWhere(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseWhere(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Fatalf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

func TestParseWhereRefuses(t *testing.T) {
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "empty"},
		{"field only", "tags", "no operator"},
		{"no field", "=work", "no field"},
		{"no field before le", "<=3", "no field"},
		{"space before operator", "tags =work", `' ' at byte 4`},
		{"leading space", " tags=work", `' ' at byte 0`},
		{"lone caret", "title^Gro", `'^' at byte 5`},
		{"bang", "n!=3", `'!' at byte 1`},
		{"field too long", strings.Repeat("f", MaxField+1) + "=1", "field of 65 bytes"},
		{"input too long", "f=" + strings.Repeat("v", MaxWhere-1), "over 4096"},
		{"value not utf-8", "f=\xff", "not UTF-8"},
		{"field not utf-8", "f\xff=1", `at byte 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseWhere(tt.in)
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("ParseWhere(%q) = %+v, %v; want an error wrapping ErrQuery", tt.in, p, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ParseWhere(%q): %q does not say %q", tt.in, err, tt.wantMsg)
			}
		})
	}
}

// FuzzParseWhere: ParseWhere never panics; what it accepts is within its
// caps, and formats back (Predicate.String) to its input, which parses to
// the same predicate.
func FuzzParseWhere(f *testing.F) {
	for _, s := range []string{"tags=work", "n>=3", "n<=3", "title^=Gro", "when<2026-01-01T00:00:00Z", "q==b", "=x", "a b=c", "título>é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseWhere(s)
		if err != nil {
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("ParseWhere(%q): %v does not wrap ErrQuery", s, err)
			}
			return
		}
		if p.Field == "" || len(p.Field) > MaxField || len(s) > MaxWhere {
			t.Fatalf("ParseWhere(%q) = %+v: outside the caps", s, p)
		}
		if p.String() != s {
			t.Fatalf("ParseWhere(%q) = %+v, which formats as %q", s, p, p.String())
		}
		q, err := ParseWhere(p.String())
		if err != nil || q != p {
			t.Fatalf("ParseWhere(%q) = %+v, %v; want %+v", p.String(), q, err, p)
		}
	})
}
