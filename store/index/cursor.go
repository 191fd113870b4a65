package index

import (
	"encoding/base64"
	"encoding/binary"
	"math"

	"github.com/exopeer/exopeer/store"
)

// A cursor is the place after a page's last hit: that hit's sort key and
// entity ID, and the fingerprint of the query it belongs to. Its text is
// base64url (no padding) of:
//
//	version 1 (1 byte), query fingerprint (8 bytes), entity ID (16 bytes),
//	key tag (1 byte): 0 no key (an entity without the ordering field),
//	  1 a number (8 bytes, IEEE 754 big-endian), 2 a string (the rest),
//	  3 bytes (the rest: a time's timeKey).
//
// It is opaque to clients; a cursor that does not decode, or belongs to
// another query, is refused with store.ErrQuery.
type cursor struct {
	fp     [8]byte
	entity store.EntityID
	key    any // nil, float64, string or []byte
}

const (
	cursorVersion = 1
	// maxCursor bounds a cursor's text: a keyword key is at most a
	// document long.
	maxCursor = (1+8+16+1+store.MaxDoc)*4/3 + 4
)

func (c cursor) encode() string {
	b := []byte{cursorVersion}
	b = append(b, c.fp[:]...)
	b = append(b, c.entity[:]...)
	switch k := c.key.(type) {
	case nil:
		b = append(b, 0)
	case float64:
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(k))
	case string:
		b = append(b, 2)
		b = append(b, k...)
	case []byte:
		b = append(b, 3)
		b = append(b, k...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses what encode makes; errors wrap store.ErrQuery.
func decodeCursor(s string) (cursor, error) {
	if len(s) > maxCursor {
		return cursor{}, errQuery("after: a cursor of %d bytes, over %d", len(s), maxCursor)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errQuery("after: not a cursor (base64)")
	}
	const head = 1 + 8 + 16 + 1
	if len(b) < head || b[0] != cursorVersion {
		return cursor{}, errQuery("after: not a cursor (version or length)")
	}
	var c cursor
	copy(c.fp[:], b[1:9])
	copy(c.entity[:], b[9:25])
	rest := b[head:]
	switch b[25] {
	case 0:
		if len(rest) != 0 {
			return cursor{}, errQuery("after: not a cursor (trailing bytes)")
		}
	case 1:
		if len(rest) != 8 {
			return cursor{}, errQuery("after: not a cursor (number)")
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(rest))
		if math.IsNaN(f) {
			return cursor{}, errQuery("after: not a cursor (NaN)")
		}
		c.key = f
	case 2:
		c.key = string(rest)
	case 3:
		c.key = append([]byte{}, rest...)
	default:
		return cursor{}, errQuery("after: not a cursor (key tag %d)", b[25])
	}
	return c, nil
}
