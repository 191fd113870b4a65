package peer

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/doctor"
)

// TestNodeDoctor: a node whose configured port another program holds, in a
// data dir others can enter, is told both, each with its fix; its listen
// addresses and disk are reported.
func TestNodeDoctor(t *testing.T) {
	port := freeLoopbackPort(t)
	taken, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	for _, f := range []string{datadir.KeyFile, datadir.TokenFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := loopbackOptions(t, 1)
	off := false
	opts.Network = RealNetwork(datadir.NetworkConfig{Port: port, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, nil)
	opts.Doctor = DoctorOptions{DataDir: dir, Port: port}
	n := startNode(t, opts)
	got := n.Doctor(t.Context())
	want := []struct {
		check string
		level doctor.Level
		says  string
		fix   string
	}{
		{doctor.CheckListen, doctor.OK, "/ip4/127.0.0.1/udp/", ""},
		{doctor.CheckPort, doctor.Problem, "Port " + strconv.Itoa(port) + " is taken", filepath.Join(dir, datadir.ConfigFile)},
		{doctor.CheckFiles, doctor.Problem, dir + " is open to other users (mode 0755)", "chmod 700 " + dir},
		{doctor.CheckFiles, doctor.OK, filepath.Join(dir, datadir.KeyFile) + " is private (mode 0600)", ""},
		{doctor.CheckDisk, "", "The disk of " + dir, ""}, // any level: the test machine's disk may be low
		{doctor.CheckPeers, doctor.OK, "No peer is connected", ""},
	}
	for _, w := range want {
		found := false
		for _, f := range got {
			found = found || f.Check == w.check && (w.level == "" || f.Level == w.level) && strings.Contains(f.Say, w.says) && strings.Contains(f.Fix, w.fix)
		}
		if !found {
			t.Errorf("no %s finding %s %q (fix %q) in %+v", w.level, w.check, w.says, w.fix, got)
		}
	}
}
