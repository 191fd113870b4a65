package blob

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func testCID(codec uint64, data string) cid.Cid {
	sum := sha256.Sum256([]byte(data))
	h, _ := mh.Encode(sum[:], mh.SHA2_256)
	return cid.NewCidV1(codec, h)
}

func TestCapabilityRoundTrip(t *testing.T) {
	var k Key
	for i := range k {
		k[i] = byte(250 - i)
	}
	for _, c := range []Capability{
		{Root: testCID(cid.Raw, "a"), Key: k},
		{Root: testCID(cid.DagProtobuf, "b"), Key: k, Dir: true},
		{Root: testCID(cid.DagProtobuf, "c"), Public: true},
		{Root: testCID(cid.DagProtobuf, "d"), Public: true, Dir: true},
	} {
		s := c.String()
		got, err := ParseCapability(s)
		if err != nil || got != c {
			t.Fatalf("ParseCapability(%q) = %+v, %v; want %+v", s, got, err, c)
		}
	}
}

func TestParseCapabilityRefuses(t *testing.T) {
	root := testCID(cid.DagProtobuf, "x").String()
	key := strings.Repeat("A", 43)
	v0 := cid.NewCidV0(testCID(cid.DagProtobuf, "x").Hash()).String()
	for _, s := range []string{
		"",
		"exo://blob/",
		"exo://blob/#" + key,
		"http://blob/" + root,
		"exo://file/" + root,
		"EXO://blob/" + root,
		"exo://blob/" + v0,
		"exo://blob/" + strings.ToUpper(root),
		"exo://blob/" + testCID(cid.DagCBOR, "x").String(),
		"exo://blob/" + root + "?dir=1",
		"exo://blob/" + root + "?x",
		"exo://blob/" + root + "?dir?dir",
		"exo://blob/" + root + "#",
		"exo://blob/" + root + "#" + key + "=",
		"exo://blob/" + root + "#" + key[:42],
		"exo://blob/" + root + "#" + key + "A",
		"exo://blob/" + root + "#" + strings.Repeat("+", 43),
		"exo://blob/" + root + "#" + key + "#" + key,
		"exo://blob/" + root + "/x#" + key,
		"exo://blob/" + root + "#" + key + strings.Repeat(" ", 300),
	} {
		if c, err := ParseCapability(s); !errors.Is(err, ErrCapability) {
			t.Errorf("ParseCapability(%q) = %+v, %v; want ErrCapability", s, c, err)
		}
	}
}

// FuzzParseCapability: whatever parses prints back to the same text.
func FuzzParseCapability(f *testing.F) {
	var k Key
	f.Add(Capability{Root: testCID(cid.Raw, "a"), Key: k}.String())
	f.Add(Capability{Root: testCID(cid.DagProtobuf, "b"), Dir: true, Public: true}.String())
	f.Add("exo://blob/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi?dir#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("exo://blob/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCapability(s)
		if err != nil {
			if !errors.Is(err, ErrCapability) {
				t.Fatalf("error %v does not wrap ErrCapability", err)
			}
			return
		}
		if c.String() != s {
			t.Fatalf("%q parsed, prints as %q", s, c.String())
		}
	})
}
