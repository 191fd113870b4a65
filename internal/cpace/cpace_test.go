package cpace

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/gtank/ristretto255"
)

// vectors holds draft Appendix B.3; the file names its source.
type vectors struct {
	Source          string `json:"source"`
	PRS             hexBytes
	CI              hexBytes
	SID             hexBytes `json:"sid"`
	GeneratorString hexBytes `json:"generator_string"`
	HashResult      hexBytes `json:"hash_result"`
	G               hexBytes `json:"g"`
	Ya, Yb          hexBytes
	YaScalar        hexBytes `json:"ya"`
	YbScalar        hexBytes `json:"yb"`
	ADa, ADb        hexBytes
	K               hexBytes
	TranscriptIR    hexBytes `json:"transcript_ir"`
	ISKIR           hexBytes `json:"ISK_IR"`
	TranscriptOC    hexBytes `json:"transcript_oc"`
	ISKSY           hexBytes `json:"ISK_SY"`
	Valid           struct {
		S, X, Result hexBytes
	} `json:"scalar_mult_valid"`
	Invalid struct {
		S   hexBytes
		YI1 hexBytes `json:"Y_i1"`
		YI2 hexBytes `json:"Y_i2"`
	} `json:"scalar_mult_vfy_invalid"`
}

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/ristretto255_sha512.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.YaScalar) != 32 || len(v.ISKIR) != ISKSize {
		t.Fatalf("vectors incomplete: %+v", v)
	}
	return v
}

// scalarReader yields the 64 bytes that reduce to the little-endian scalar
// s (< 2^252): s followed by zeros.
func scalarReader(s []byte) io.Reader {
	return bytes.NewReader(append(append([]byte(nil), s...), make([]byte, 32)...))
}

func mustScalar(t *testing.T, b []byte) *ristretto255.Scalar {
	t.Helper()
	s, err := ristretto255.NewScalar().SetCanonicalBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVectorsGenerator(t *testing.T) {
	v := loadVectors(t)
	gs := generatorString(v.PRS, v.CI, v.SID)
	if !bytes.Equal(gs, v.GeneratorString) {
		t.Errorf("generator_string = %x, want %x", gs, v.GeneratorString)
	}
	g := calculateGenerator(v.PRS, v.CI, v.SID)
	if got := g.Bytes(); !bytes.Equal(got, v.G) {
		t.Errorf("g = %x, want %x", got, v.G)
	}
}

func TestVectorsProtocol(t *testing.T) {
	v := loadVectors(t)
	a, ya, err := Start(Initiator, v.PRS, v.CI, v.SID, v.ADa, scalarReader(v.YaScalar))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ya, v.Ya) {
		t.Errorf("Ya = %x, want %x", ya, v.Ya)
	}
	b, yb, err := Start(Responder, v.PRS, v.CI, v.SID, v.ADb, scalarReader(v.YbScalar))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(yb, v.Yb) {
		t.Errorf("Yb = %x, want %x", yb, v.Yb)
	}

	for _, k := range []struct {
		name  string
		y, pt []byte
	}{{"ya*Yb", v.YaScalar, v.Yb}, {"yb*Ya", v.YbScalar, v.Ya}} {
		got, err := scalarMultVfy(mustScalar(t, k.y), k.pt)
		if err != nil || !bytes.Equal(got, v.K) {
			t.Errorf("K = %s = %x, %v; want %x", k.name, got, err, v.K)
		}
	}
	if tr := transcriptIR(v.Ya, v.ADa, v.Yb, v.ADb); !bytes.Equal(tr, v.TranscriptIR) {
		t.Errorf("transcript_ir = %x, want %x", tr, v.TranscriptIR)
	}

	iskA, err := a.Finish(yb, v.ADb)
	if err != nil {
		t.Fatal(err)
	}
	iskB, err := b.Finish(ya, v.ADa)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iskA, v.ISKIR) || !bytes.Equal(iskB, v.ISKIR) {
		t.Errorf("ISK_IR: initiator %x, responder %x, want %x", iskA, iskB, v.ISKIR)
	}
}

func TestVectorsParallel(t *testing.T) {
	v := loadVectors(t)
	tr := transcriptOC(v.Ya, v.ADa, v.Yb, v.ADb)
	if !bytes.Equal(tr, v.TranscriptOC) {
		t.Errorf("transcript_oc = %x, want %x", tr, v.TranscriptOC)
	}
	if tr2 := transcriptOC(v.Yb, v.ADb, v.Ya, v.ADa); !bytes.Equal(tr2, tr) {
		t.Errorf("transcript_oc depends on argument order")
	}
	if isk := deriveISK(v.SID, v.K, tr); !bytes.Equal(isk, v.ISKSY) {
		t.Errorf("ISK_SY = %x, want %x", isk, v.ISKSY)
	}
}

func TestVectorsScalarMultVfy(t *testing.T) {
	v := loadVectors(t)
	got, err := scalarMultVfy(mustScalar(t, v.Valid.S), v.Valid.X)
	if err != nil || !bytes.Equal(got, v.Valid.Result) {
		t.Errorf("scalar_mult_vfy(s, X) = %x, %v; want %x", got, err, v.Valid.Result)
	}
	for name, y := range map[string][]byte{"Y_i1": v.Invalid.YI1, "Y_i2 (identity)": v.Invalid.YI2} {
		if _, err := scalarMultVfy(mustScalar(t, v.Invalid.S), y); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("scalar_mult_vfy(s, %s) error = %v, want ErrInvalidMessage", name, err)
		}
	}
}

// Test vectors of draft Appendix A (string utilities).
func TestStringUtilities(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"prepend_len(b'')", prependLen(nil, nil), []byte{0}},
		{"prepend_len(b'1234')", prependLen(nil, []byte("1234")), []byte("\x041234")},
		{"prepend_len(range(127))", prependLen(nil, seq(127)), append([]byte{0x7f}, seq(127)...)},
		{"prepend_len(range(128))", prependLen(nil, seq(128)), append([]byte{0x80, 0x01}, seq(128)...)},
		{"prepend_len(300 bytes)", prependLen(nil, seq(300))[:2], []byte{0xac, 0x02}},
		{"lv_cat", lvCat([]byte("1234"), []byte("5"), nil, []byte("678")), mustHex("043132333401350003363738")},
		{"o_cat(ABCD,BCD)", oCat([]byte("ABCD"), []byte("BCD")), mustHex("6f6342434441424344")},
		{"o_cat(BCD,ABCDE)", oCat([]byte("BCD"), []byte("ABCDE")), mustHex("6f634243444142434445")},
		{"transcript_ir 1", transcriptIR([]byte("123"), []byte("PartyA"), []byte("234"), []byte("PartyB")),
			mustHex("03313233065061727479410332333406506172747942")},
		{"transcript_ir 2", transcriptIR([]byte("3456"), []byte("PartyA"), []byte("2345"), []byte("PartyB")),
			mustHex("043334353606506172747941043233343506506172747942")},
		{"transcript_oc 1", transcriptOC([]byte("123"), []byte("PartyA"), []byte("234"), []byte("PartyB")),
			mustHex("6f6303323334065061727479420331323306506172747941")},
		{"transcript_oc 2", transcriptOC([]byte("3456"), []byte("PartyA"), []byte("2345"), []byte("PartyB")),
			mustHex("6f63043334353606506172747941043233343506506172747942")},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s = %x, want %x", tc.name, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"\x00", "\x00\x00", false},
		{"\x01", "\x00\x00", true},
		{"\x00\x00", "\x00", true},
		{"\x00\x00", "\x01", false},
		{"\x00\x01", "\x01", false},
		{"ABCD", "BCD", false},
	} {
		if got := lexLarger([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("lexiographically_larger(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// run plays a whole exchange and returns both ISKs and messages.
func run(t *testing.T, prsA, prsB, ciA, ciB, sidA, sidB []byte) (iskA, iskB, ya, yb []byte) {
	t.Helper()
	a, ya, err := Start(Initiator, prsA, ciA, sidA, []byte("ADa"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, yb, err := Start(Responder, prsB, ciB, sidB, []byte("ADb"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(ya) != MessageSize || len(yb) != MessageSize {
		t.Fatalf("message sizes %d, %d", len(ya), len(yb))
	}
	if iskA, err = a.Finish(yb, []byte("ADb")); err != nil {
		t.Fatal(err)
	}
	if iskB, err = b.Finish(ya, []byte("ADa")); err != nil {
		t.Fatal(err)
	}
	if len(iskA) != ISKSize || len(iskB) != ISKSize {
		t.Fatalf("ISK sizes %d, %d", len(iskA), len(iskB))
	}
	return iskA, iskB, ya, yb
}

func TestRoundTrip(t *testing.T) {
	pw, ci, sid := []byte("apple orbit tunnel"), []byte("ci"), []byte("sid")
	iskA, iskB, ya, yb := run(t, pw, pw, ci, ci, sid, sid)
	if !bytes.Equal(iskA, iskB) {
		t.Fatalf("same password, different ISK:\n%x\n%x", iskA, iskB)
	}
	tagA := ConfirmTag(iskA, sid, ya, []byte("ADa"))
	tagB := ConfirmTag(iskB, sid, yb, []byte("ADb"))
	if len(tagA) != TagSize || bytes.Equal(tagA, tagB) {
		t.Errorf("tags: len %d, equal %v", len(tagA), bytes.Equal(tagA, tagB))
	}
	if !VerifyTag(iskB, sid, ya, []byte("ADa"), tagA) || !VerifyTag(iskA, sid, yb, []byte("ADb"), tagB) {
		t.Error("valid tags do not verify")
	}
	if VerifyTag(iskA, sid, ya, []byte("ADa"), tagB) {
		t.Error("a reflected tag verifies")
	}
	if VerifyTag(iskB, sid, ya, []byte("ADa"), tagA[:TagSize-1]) {
		t.Error("a truncated tag verifies")
	}
	k1, k2 := SessionKey(iskA, "exopeer test 1", 32), SessionKey(iskB, "exopeer test 1", 32)
	if !bytes.Equal(k1, k2) || len(k1) != 32 {
		t.Errorf("SessionKey differs between sides or has length %d", len(k1))
	}
	if k3 := SessionKey(iskA, "exopeer test 2", 32); bytes.Equal(k1, k3) {
		t.Error("SessionKey ignores the label")
	}
}

func TestMismatch(t *testing.T) {
	pw, ci, sid := []byte("apple orbit tunnel"), []byte("ci"), []byte("sid")
	for _, tc := range []struct {
		name            string
		prsB, ciB, sidB []byte
	}{
		{"password", []byte("apple orbit tunneb"), ci, sid},
		{"channel identifier", pw, []byte("cj"), sid},
		{"session id", pw, ci, []byte("sie")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iskA, iskB, ya, _ := run(t, pw, tc.prsB, ci, tc.ciB, sid, tc.sidB)
			if bytes.Equal(iskA, iskB) {
				t.Fatal("different inputs, same ISK")
			}
			if VerifyTag(iskB, tc.sidB, ya, []byte("ADa"), ConfirmTag(iskA, sid, ya, []byte("ADa"))) {
				t.Error("tag verifies across different ISKs")
			}
		})
	}
	t.Run("associated data", func(t *testing.T) {
		a, ya, _ := Start(Initiator, pw, ci, sid, []byte("ADa"), rand.Reader)
		b, yb, _ := Start(Responder, pw, ci, sid, []byte("ADb"), rand.Reader)
		iskA, _ := a.Finish(yb, []byte("ADb"))
		iskB, _ := b.Finish(ya, []byte("tampered"))
		if bytes.Equal(iskA, iskB) {
			t.Error("different view of ADa, same ISK")
		}
	})
	t.Run("same role", func(t *testing.T) {
		a, ya, _ := Start(Initiator, pw, ci, sid, []byte("AD"), rand.Reader)
		b, yb, _ := Start(Initiator, pw, ci, sid, []byte("AD"), rand.Reader)
		iskA, _ := a.Finish(yb, []byte("AD"))
		iskB, _ := b.Finish(ya, []byte("AD"))
		if bytes.Equal(iskA, iskB) {
			t.Error("two initiators agree on ISK")
		}
	})
}

func TestFinishRejects(t *testing.T) {
	v := loadVectors(t)
	nonCanonical := bytes.Repeat([]byte{0xff}, 32) // exceeds the field modulus
	negative := make([]byte, 32)
	negative[0] = 1 // s = 1 is odd, i.e. "negative": not a canonical encoding
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"nil", nil},
		{"short", v.Yb[:31]},
		{"long", append(append([]byte(nil), v.Yb...), 0)},
		{"identity", make([]byte, 32)},
		{"invalid point Y_i1", v.Invalid.YI1},
		{"non-canonical", nonCanonical},
		{"negative field element", negative},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckMessage(tc.msg); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("CheckMessage = %v; want ErrInvalidMessage", err)
			}
			s, _, err := Start(Initiator, v.PRS, v.CI, v.SID, v.ADa, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			isk, err := s.Finish(tc.msg, v.ADb)
			if !errors.Is(err, ErrInvalidMessage) || isk != nil {
				t.Fatalf("Finish = %x, %v; want ErrInvalidMessage", isk, err)
			}
			if _, err := s.Finish(v.Yb, v.ADb); err == nil {
				t.Error("state usable again after an aborted Finish")
			}
		})
	}
}

func TestFinishTwice(t *testing.T) {
	v := loadVectors(t)
	s, _, err := Start(Initiator, v.PRS, v.CI, v.SID, v.ADa, scalarReader(v.YaScalar))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(v.Yb, v.ADb); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(v.Yb, v.ADb); err == nil || errors.Is(err, ErrInvalidMessage) {
		t.Errorf("second Finish error = %v, want a misuse error", err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, _, err := Start(Role(7), nil, nil, nil, nil, rand.Reader); err == nil {
		t.Error("Start accepted an unknown role")
	}
	if _, _, err := Start(Initiator, nil, nil, nil, nil, bytes.NewReader(make([]byte, 63))); err == nil {
		t.Error("Start accepted a short random source")
	}
	if _, _, err := Start(Initiator, nil, nil, nil, nil, bytes.NewReader(make([]byte, 64*scalarTries))); err == nil {
		t.Error("Start accepted a zero scalar")
	}
	// The group order l, as 64 little-endian bytes, reduces to zero and must
	// be resampled: the next 64 bytes give the scalar 1.
	l := mustHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	src := append(append(l, make([]byte, 32)...), append([]byte{1}, make([]byte, 63)...)...)
	_, msg, err := Start(Initiator, []byte("pw"), nil, nil, nil, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if g := calculateGenerator([]byte("pw"), nil, nil).Bytes(); !bytes.Equal(msg, g) {
		t.Errorf("after resampling, Y = %x, want the generator %x (scalar 1)", msg, g)
	}
}

func TestArgumentsCopied(t *testing.T) {
	v := loadVectors(t)
	ad, sid := bytes.Clone(v.ADa), bytes.Clone(v.SID)
	s, msg, err := Start(Initiator, v.PRS, v.CI, sid, ad, scalarReader(v.YaScalar))
	if err != nil {
		t.Fatal(err)
	}
	ad[0]++
	sid[0]++
	msg[0]++
	isk, err := s.Finish(v.Yb, v.ADb)
	if err != nil || !bytes.Equal(isk, v.ISKIR) {
		t.Errorf("ISK after caller mutation = %x, %v; want %x", isk, err, v.ISKIR)
	}
}

func TestSessionKeyPanics(t *testing.T) {
	for _, n := range []int{0, -1, 255*64 + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SessionKey(n=%d) did not panic", n)
				}
			}()
			SessionKey(make([]byte, ISKSize), "x", n)
		}()
	}
}

func TestRoleString(t *testing.T) {
	if Initiator.String() != "initiator" || Responder.String() != "responder" || Role(5).String() != "Role(5)" {
		t.Error("Role.String")
	}
}

// Example shows one run as the caller drives it over a stream: exchange
// messages, finish, exchange and check confirmation tags, derive keys.
func Example() {
	prs := []byte("apple orbit tunnel") // from the invite code
	ci := []byte("exopeer join v1")     // channel identifier both sides know
	sid := []byte("nonce-a|nonce-b")    // fresh, agreed session id

	a, msgA, _ := Start(Initiator, prs, ci, sid, []byte("joiner"), rand.Reader)
	b, msgB, _ := Start(Responder, prs, ci, sid, []byte("member"), rand.Reader)
	// ... msgA+"joiner" and msgB+"member" cross the wire ...
	iskA, errA := a.Finish(msgB, []byte("member"))
	iskB, errB := b.Finish(msgA, []byte("joiner"))
	if errA != nil || errB != nil {
		fmt.Println("abort")
		return
	}
	tagA := ConfirmTag(iskA, sid, msgA, []byte("joiner"))
	tagB := ConfirmTag(iskB, sid, msgB, []byte("member"))
	// ... tags cross the wire ...
	fmt.Println("A accepts B:", VerifyTag(iskA, sid, msgB, []byte("member"), tagB))
	fmt.Println("B accepts A:", VerifyTag(iskB, sid, msgA, []byte("joiner"), tagA))
	fmt.Println("same key:", bytes.Equal(SessionKey(iskA, "exopeer join key", 32), SessionKey(iskB, "exopeer join key", 32)))
	// Output:
	// A accepts B: true
	// B accepts A: true
	// same key: true
}
