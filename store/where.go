package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caps on a predicate's text form.
const (
	// MaxWhere is the longest predicate ParseWhere takes, in bytes: a
	// field, an operator and a value (a keyword, a number, a time or an
	// entity ID is far shorter; 4 KiB leaves room for long keywords and
	// refuses a CLI argument or a query string that is not a predicate).
	MaxWhere = 4 << 10
	// MaxField is the longest field name in a predicate, in bytes.
	MaxField = 64
)

// ops are the comparisons, the two-byte ones first: the longest operator
// wins, so "n<=3" is Le, not Lt with the value "=3".
var ops = []Cmp{Le, Ge, Prefix, Eq, Lt, Gt}

// ParseWhere parses a predicate in its text form, FIELD OP VALUE, as the
// CLI's --where and the API's where parameters take it: "tags=work",
// "n>=3", "title^=Gro", "when<2026-01-01T00:00:00Z".
//
// FIELD is 1 to MaxField bytes of letters, digits, '_', '-' and '.'; OP is
// one of = < <= > >= ^= (the longest that matches); VALUE is the rest,
// taken literally (it may be empty, contain '=' or spaces; it must be
// UTF-8). The whole is at most MaxWhere bytes. Whether the field exists and
// takes OP, and whether VALUE parses as the field's kind, is the query's
// business (the index checks it against the registry). Errors wrap
// ErrQuery.
func ParseWhere(s string) (Predicate, error) {
	if len(s) > MaxWhere {
		return Predicate{}, fmt.Errorf("where: %d bytes, over %d: %w", len(s), MaxWhere, ErrQuery)
	}
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !fieldRune(r) {
			break
		}
		i += n
	}
	field, rest := s[:i], s[i:]
	if field == "" {
		if rest == "" {
			return Predicate{}, fmt.Errorf("where: empty, want FIELD OP VALUE (e.g. tags=work): %w", ErrQuery)
		}
		if opAt(rest) != "" {
			return Predicate{}, fmt.Errorf("where %q: no field before the operator: %w", truncate(s), ErrQuery)
		}
	}
	if len(field) > MaxField {
		return Predicate{}, fmt.Errorf("where %q: field of %d bytes, over %d: %w", truncate(s), len(field), MaxField, ErrQuery)
	}
	op := opAt(rest)
	if op == "" {
		if rest == "" {
			return Predicate{}, fmt.Errorf("where %q: no operator, want one of = < <= > >= ^=: %w", truncate(s), ErrQuery)
		}
		r, _ := utf8.DecodeRuneInString(rest)
		return Predicate{}, fmt.Errorf("where %q: %q at byte %d is neither part of a field name (letters, digits, _ - .) nor an operator (= < <= > >= ^=): %w",
			truncate(s), r, i, ErrQuery)
	}
	value := rest[len(op):]
	if !utf8.ValidString(value) {
		return Predicate{}, fmt.Errorf("where %q: value is not UTF-8: %w", truncate(s), ErrQuery)
	}
	return Predicate{Field: field, Op: op, Value: value}, nil
}

// opAt returns the operator s starts with, the longest, or "".
func opAt(s string) Cmp {
	for _, op := range ops {
		if strings.HasPrefix(s, string(op)) {
			return op
		}
	}
	return ""
}

func fieldRune(r rune) bool {
	return r == '_' || r == '-' || r == '.' || (r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)))
}

// String returns the predicate's text form, FIELD OP VALUE, which
// ParseWhere parses back to p when p is valid (a field ParseWhere takes, a
// known operator, a UTF-8 value) and not ambiguous: Lt or Gt with a value
// that starts with '=' reads back as Le or Ge, which is why ParseWhere
// never returns one.
func (p Predicate) String() string { return p.Field + string(p.Op) + p.Value }
