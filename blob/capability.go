package blob

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// maxCapability caps the length of a capability's text: the longest valid
// one (a base32 CIDv1 of a SHA-256, "?dir", a key) is about 120 bytes.
const maxCapability = 256

const capPrefix = "exo://blob/"

var keyEncoding = base64.RawURLEncoding.Strict()

// String returns the capability's text form (see [Capability]); it parses
// back to the same capability.
func (c Capability) String() string {
	var b strings.Builder
	b.WriteString(capPrefix)
	if c.Root.Defined() {
		b.WriteString(c.Root.String())
	}
	if c.Dir {
		b.WriteString("?dir")
	}
	if !c.Public {
		b.WriteByte('#')
		b.WriteString(keyEncoding.EncodeToString(c.Key[:]))
	}
	return b.String()
}

// ParseCapability parses a capability's text form. It is strict: scheme
// "exo", host "blob", a CIDv1 in its canonical base32 form with codec raw
// or dag-pb and a SHA-256 multihash, an optional "?dir" and nothing else as
// query, and either no fragment (a public blob) or a fragment of exactly 32
// bytes in base64url without padding. Errors wrap ErrCapability.
func ParseCapability(s string) (Capability, error) {
	var c Capability
	if len(s) > maxCapability {
		return c, fmt.Errorf("%d bytes, more than %d: %w", len(s), maxCapability, ErrCapability)
	}
	rest, ok := strings.CutPrefix(s, capPrefix)
	if !ok {
		return c, fmt.Errorf("does not start with %q: %w", capPrefix, ErrCapability)
	}
	rest, frag, hasFrag := strings.Cut(rest, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if query != "dir" {
			return c, fmt.Errorf("query %q (only \"dir\" is allowed): %w", query, ErrCapability)
		}
		c.Dir = true
	}
	root, err := parseRoot(rest)
	if err != nil {
		return c, err
	}
	c.Root = root
	if !hasFrag {
		c.Public = true
		return c, nil
	}
	if len(frag) != 43 {
		return c, fmt.Errorf("key of %d characters, want 43: %w", len(frag), ErrCapability)
	}
	k, err := keyEncoding.DecodeString(frag)
	if err != nil || len(k) != KeySize {
		return c, fmt.Errorf("key is not 32 bytes of base64url: %w", ErrCapability)
	}
	copy(c.Key[:], k)
	return c, nil
}

// parseRoot parses the CID of a capability; see ParseCapability.
func parseRoot(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, fmt.Errorf("no root CID: %w", ErrCapability)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("root CID: %v: %w", err, ErrCapability)
	}
	if c.Version() != 1 {
		return cid.Undef, fmt.Errorf("root CID is v0 (blobs are CIDv1): %w", ErrCapability)
	}
	if c.String() != s {
		return cid.Undef, fmt.Errorf("root CID not in canonical base32 form: %w", ErrCapability)
	}
	if t := c.Type(); t != cid.Raw && t != cid.DagProtobuf {
		return cid.Undef, fmt.Errorf("root CID codec %#x (want raw or dag-pb): %w", t, ErrCapability)
	}
	p := c.Prefix()
	if p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return cid.Undef, fmt.Errorf("root CID hash is not SHA-256: %w", ErrCapability)
	}
	return c, nil
}
