package server

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blob"
)

// testCap is a capability with a fixed root and key.
func testCap(t testing.TB, public, dir bool) blob.Capability {
	t.Helper()
	sum := sha256.Sum256([]byte("exopeer capparam test"))
	h, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	c := blob.Capability{Root: cid.NewCidV1(cid.DagProtobuf, h), Public: public, Dir: dir}
	if !public {
		for i := range c.Key {
			c.Key[i] = byte(i * 7)
		}
	}
	return c
}

func TestParseCapForms(t *testing.T) {
	for _, tt := range []struct {
		name        string
		public, dir bool
	}{
		{"sealed", false, false},
		{"public", true, false},
		{"sealed dir", false, true},
		{"public dir", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := testCap(t, tt.public, tt.dir)
			text := want.String()
			root, rest, _ := strings.Cut(strings.TrimPrefix(text, capPrefix), "?dir")
			root, key, _ := strings.Cut(root+rest, "#")
			path := root
			if key != "" {
				path += "." + key
			}
			if tt.dir {
				path += ".dir"
			}
			for _, s := range []string{text, path} {
				got, err := parseCap(s)
				if err != nil || got != want {
					t.Errorf("parseCap(%q) = %v, %v; want %v", s, got, err, want)
				}
			}
		})
	}
	c := testCap(t, false, false)
	root := c.Root.String()
	key := strings.SplitN(c.String(), "#", 2)[1]
	for _, bad := range []string{
		"", ".", root + ".", "." + key, root + ".dir.dir", root + ".dir." + key, root + "." + key + ".dir.x",
		root + ".nokey", root + "?dir", root + "#" + key, "exo://blob/" + root + "?x", "exo:" + root,
		"Qmabc", strings.Repeat("a", 600), root + "." + key + "%2F",
	} {
		if _, err := parseCap(bad); !errors.Is(err, blob.ErrCapability) {
			t.Errorf("parseCap(%q) = %v, want ErrCapability", bad, err)
		}
	}
}

func TestFirstByte(t *testing.T) {
	for _, tt := range []struct {
		rng  string
		want int64
	}{
		{"", 0},
		{"bytes=10-20", 10},
		{"bytes=10-", 10},
		{"bytes=-30", 70},
		{"bytes=-300", 0},
		{"bytes=-0", 0},
		{"bytes=1-2,5-6", 0},
		{"bytes=x-", 0},
		{"bytes=-1-", 0},
		{"items=1-2", 0},
		{"bytes=200-", 200},
	} {
		if got := firstByte(tt.rng, 100); got != tt.want {
			t.Errorf("firstByte(%q, 100) = %d, want %d", tt.rng, got, tt.want)
		}
	}
}

// FuzzCapParam feeds any string to the parser of a capability in a path:
// it never panics, and what it takes is a capability whose text it takes
// back as the same.
func FuzzCapParam(f *testing.F) {
	c := testCap(f, false, true)
	for _, s := range []string{
		c.String(), testCap(f, true, false).String(), c.Root.String(), c.Root.String() + ".dir",
		strings.ReplaceAll(strings.TrimPrefix(c.String(), capPrefix), "?dir#", ".") + ".dir",
		"", ".", "a.b.c.d", "exo://blob/", "bafy.%2F", "x?y#z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCap(s)
		if err != nil {
			if !errors.Is(err, blob.ErrCapability) {
				t.Fatalf("parseCap(%q): %v, not ErrCapability", s, err)
			}
			return
		}
		back, err := parseCap(c.String())
		if err != nil || back != c {
			t.Fatalf("parseCap(%q) = %v, whose text parses as %v, %v", s, c, back, err)
		}
	})
}

// FuzzFirstByte feeds any Range header to the offset the content route
// checks the key at: it never panics and is an offset of the blob or its
// end or past it, never negative.
func FuzzFirstByte(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-500", "bytes=10-", "bytes=1-2,3-4", "bytes=-", "bytes=-9223372036854775808", "items=1-2", ""} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, rng string, size int64) {
		if size < 0 {
			return
		}
		if got := firstByte(rng, size); got < 0 {
			t.Fatalf("firstByte(%q, %d) = %d", rng, size, got)
		}
	})
}
