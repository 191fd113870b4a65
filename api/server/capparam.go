package server

import (
	"fmt"
	"strings"

	"github.com/exopeer/exopeer/blob"
)

// capPrefix begins a capability's text.
const capPrefix = "exo://blob/"

// maxCapParam bounds a capability in a path: a CID and a key are some 110
// characters; anything much longer is not one.
const maxCapParam = 512

// parseCap parses a capability as the blob routes take it in their path
// (the {cap} parameter, already unescaped): its text, exo://blob/..., or
// its path form, which needs no escaping:
//
//	CID            exo://blob/CID           a public blob
//	CID.KEY        exo://blob/CID#KEY       a sealed blob
//	CID.dir        exo://blob/CID?dir       a public directory
//	CID.KEY.dir    exo://blob/CID?dir#KEY   a sealed directory
//
// A CID has no dot (base32 and base58 have none) and a key has none
// (base64url), so the form is unambiguous. Errors wrap blob.ErrCapability.
func parseCap(s string) (blob.Capability, error) {
	if len(s) > maxCapParam {
		return blob.Capability{}, fmt.Errorf("%w: %d bytes, more than a capability has", blob.ErrCapability, len(s))
	}
	if strings.HasPrefix(s, "exo:") {
		return blob.ParseCapability(s)
	}
	parts := strings.Split(s, ".")
	text := capPrefix + parts[0]
	key, dir := "", false
	switch {
	case len(parts) == 1:
	case len(parts) == 2 && parts[1] == "dir":
		dir = true
	case len(parts) == 2:
		key = parts[1]
	case len(parts) == 3 && parts[2] == "dir" && parts[1] != "dir":
		key, dir = parts[1], true
	default:
		return blob.Capability{}, fmt.Errorf("%w: %q is not CID, CID.KEY, CID.dir or CID.KEY.dir", blob.ErrCapability, s)
	}
	// The parts go into a capability's text: none may carry what its
	// syntax gives a meaning to.
	for _, p := range parts[:len(parts)-btoi(dir)] {
		if p == "" || strings.ContainsAny(p, "/?#:%") {
			return blob.Capability{}, fmt.Errorf("%w: %q is not CID, CID.KEY, CID.dir or CID.KEY.dir", blob.ErrCapability, s)
		}
	}
	if dir {
		text += "?dir"
	}
	if key != "" {
		text += "#" + key
	}
	return blob.ParseCapability(text)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
