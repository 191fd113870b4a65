package loopbench_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/internal/netnstest"
)

// TestRestoredNodeNeverReusesKeys runs two exopeer processes on
// loopback, a and b, each in a cell of its own, contacts. a sends b a
// message, stops, and its data dir is copied (a backup); a starts again
// and sends two more, stops, and its data dir is replaced by the copy (a
// restore: its session with b is two messages behind b's); a starts on
// it and sends a fourth. b holds the four messages once each and
// refused no frame: a sealed the fourth on a new session, not on the
// restored one, whose next message keys went out with the second and
// third (message/service/restore.go).
func TestRestoredNodeNeverReusesKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs exopeer processes")
	}
	bin := netnstest.Binary(t)
	na := start(t, bin, "a", nil)
	nb := start(t, bin, "b", nil, bootArgs(t, na)...)
	ctx, cancel := context.WithTimeout(t.Context(), stepLimit)
	defer cancel()
	contacts(t, ctx, na, nb)
	send := func(p *proc, text string) {
		t.Helper()
		if _, err := p.c.Send(ctx, "B", text); err != nil {
			t.Fatalf("%s sends %q: %v\n%s\n%s", p.name, text, err, p.tail(), nb.tail())
		}
	}
	send(na, "one")
	na.stop(t)
	dir := na.dir
	backup := filepath.Join(t.TempDir(), "a-backup")
	copyDir(t, dir, backup)

	na = startAt(t, bin, "a-again", dir, nil, bootArgs(t, nb)...)
	send(na, "two")
	send(na, "three")
	na.stop(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, dir)

	refused := strings.Count(nb.tail4k(), "message refused")
	na = startAt(t, bin, "a-restored", dir, nil, bootArgs(t, nb)...)
	send(na, "four")
	page, err := nb.c.Messages(ctx, "A", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Messages {
		got = append(got, m.Text)
	}
	if want := []string{"one", "two", "three", "four"}; !slices.Equal(got, want) {
		for _, m := range page.Messages {
			t.Logf("%s %s %v", m.Text, m.Order, m.Sent)
		}
		t.Fatalf("b holds %q, want %q", got, want)
	}
	if n := strings.Count(nb.tail4k(), "message refused") - refused; n != 0 {
		t.Fatalf("b refused %d frames of the restored a: it sealed on its restored session, with keys already used\n%s", n, nb.tail())
	}
}

// copyDir copies the directory src to dst (cp -a).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
}
