package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"

	"github.com/exopeer/exopeer/blob"
	blobservice "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/message"
)

// fakeFiles records what the service asks of the cell's files.
type fakeFiles struct {
	mu       sync.Mutex
	shared   []string // "<contact cell> <capability>"
	received []string // "<from cell> <capability> <name>"
	fail     error    // Received's answer
}

func (f *fakeFiles) ShareWith(_ context.Context, contact ed25519.PublicKey, c blob.Capability) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shared = append(f.shared, string(contact)+" "+c.String())
	return nil
}

func (f *fakeFiles) Received(_ context.Context, from ed25519.PublicKey, c blob.Capability, name, _ string, _ int64) (blobservice.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return blobservice.File{}, f.fail
	}
	f.received = append(f.received, string(from)+" "+c.String()+" "+name)
	return blobservice.File{}, nil
}

func (f *fakeFiles) calls() (shared, received []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.shared...), append([]string(nil), f.received...)
}

// testFile is a file with a capability that parses.
var testFile = File{
	Cap:  "exo://blob/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
	Name: "notes.txt", Size: 1234, Media: "text/plain; charset=utf-8",
}

// TestSendFile: SendFile records the share with the contact, then the
// message, which carries the file: both cells' records have it, the
// recipient's files are asked to record it once; the text defaults to
// the file's name; the courier's envelope of the record carries it too.
func TestSendFile(t *testing.T) { bubble(t, testSendFile) }

func testSendFile(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	af, bf := &fakeFiles{}, &fakeFiles{}
	alice.svc.files, bob.svc.files = af, bf
	m, err := alice.svc.SendFile(t.Context(), "Bob", testFile, "")
	if err != nil || m.State != Delivered || m.Text != "notes.txt" || m.File == nil || *m.File != testFile {
		t.Fatalf("SendFile: %+v, %v", m, err)
	}
	bobCell, aliceCell := string(bob.list.Cell), string(alice.list.Cell)
	if shared, _ := af.calls(); len(shared) != 1 || shared[0] != bobCell+" "+testFile.Cap {
		t.Fatalf("alice's shares: %q", shared)
	}
	if _, got := bf.calls(); len(got) != 1 || got[0] != aliceCell+" "+testFile.Cap+" notes.txt" {
		t.Fatalf("bob's files received %q", got)
	}
	for _, d := range []*device{alice, bob} {
		ms := d.store.messages()
		if len(ms) != 1 || ms[0].File == nil || *ms[0].File != testFile {
			t.Fatalf("%s records %+v", d.name, ms)
		}
	}
	env, err := envelopeOf(m, alice.list.Cell, bob.list.Cell, bob.h.ID())
	if err != nil || env.File == nil || *env.File != *testFile.attachment() {
		t.Fatalf("the courier's envelope: %+v, %v", env, err)
	}
}

// TestFileRefused: an envelope whose attachment's capability does not
// parse is refused like a malformed envelope: the recipient records
// neither the message nor the file; SendFile refuses it before anything
// is recorded. A file the recipient's files fail to record has the
// message refused (not acknowledged: sent again later).
func TestFileRefused(t *testing.T) { bubble(t, testFileRefused) }

func testFileRefused(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	af, bf := &fakeFiles{}, &fakeFiles{}
	alice.svc.files, bob.svc.files = af, bf
	bad := testFile
	bad.Cap = "exo://blob/not-a-cid"
	if _, err := alice.svc.SendFile(t.Context(), "Bob", bad, ""); !errors.Is(err, message.ErrBadEnvelope) {
		t.Fatalf("SendFile of a bad capability: %v, want ErrBadEnvelope", err)
	}
	if ms := alice.store.messages(); len(ms) != 0 {
		t.Fatalf("alice recorded %+v", ms)
	}
	// Sealed by hand, as another implementation might.
	env := &message.Envelope{Cell: alice.list.Cell, To: bob.list.Cell, Device: alice.h.ID(), Text: "x", File: bad.attachment()}
	if err := alice.svc.read(env.ID[:]); err != nil {
		t.Fatal(err)
	}
	if err := alice.svc.deliver(t.Context(), bob.h.ID(), env, nil, func() error { return nil }); err == nil {
		t.Fatal("an envelope with a bad capability was acknowledged")
	}
	if _, got := bf.calls(); len(got) != 0 || len(bob.store.messages()) != 0 {
		t.Fatalf("bob recorded files %q, messages %+v", got, bob.store.messages())
	}
	bf.fail = errors.New("disk full")
	good := &message.Envelope{Cell: alice.list.Cell, To: bob.list.Cell, Device: alice.h.ID(), Text: "y", File: testFile.attachment()}
	if err := alice.svc.read(good.ID[:]); err != nil {
		t.Fatal(err)
	}
	if err := alice.svc.deliver(t.Context(), bob.h.ID(), good, nil, func() error { return nil }); err == nil {
		t.Fatal("a message whose file was not recorded was acknowledged")
	}
}
