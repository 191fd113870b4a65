package blob

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestKuboCIDs holds the root CIDs Kubo gives for public blobs and a public
// directory (testdata/kubo-cids.txt says how they were made): a public
// import must give the same.
func TestKuboCIDs(t *testing.T) {
	f, err := os.Open("testdata/kubo-cids.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("line %q", line)
		}
		var im Imported
		if fields[0] == "dir" {
			im, err = ImportDir(t.Context(), testTree(), newMemBlocks(), ImportOptions{Public: true})
		} else {
			seed, _ := strconv.ParseUint(fields[0], 10, 64)
			size, _ := strconv.Atoi(fields[1])
			im, err = Import(t.Context(), bytes.NewReader(randomBytes(seed, size)), newMemBlocks(), ImportOptions{Public: true})
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := im.Cap.Root.String(); got != fields[2] {
			t.Errorf("%s %s: root %s, Kubo gave %s", fields[0], fields[1], got, fields[2])
		}
		n++
	}
	if n != 6 {
		t.Fatalf("%d CIDs in testdata/kubo-cids.txt, want 6", n)
	}
}

// TestKuboImportsCAR runs a real Kubo, offline, when EXOPEER_KUBO names its
// binary (skipped otherwise): `ipfs dag import` of the CAR export of a
// public and a sealed blob and of a public and a sealed directory must pin
// their roots, and `ipfs add
// --only-hash` of the public one must give its root.
//
//	EXOPEER_KUBO=/tmp/kubo/ipfs go test -run TestKuboImportsCAR ./blob/
func TestKuboImportsCAR(t *testing.T) {
	ipfs := os.Getenv("EXOPEER_KUBO")
	if ipfs == "" {
		t.Skip("EXOPEER_KUBO is not set")
	}
	dir := t.TempDir()
	env := append(os.Environ(), "IPFS_PATH="+filepath.Join(dir, "repo"))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), ipfs, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ipfs %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("init", "--profile=test")
	data := randomBytes(77, 5*PublicLeafSize+3)
	for i, o := range []ImportOptions{{Public: true}, {}, {Public: true}, {}} {
		var st *memBlocks
		var im Imported
		if i < 2 {
			st, im = importBytes(t, data, o)
		} else { // a directory
			st = newMemBlocks()
			var err error
			if im, err = ImportDir(t.Context(), testTree(), st, o); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if _, _, err := ExportCAR(t.Context(), &buf, st, im.Cap.Root); err != nil {
			t.Fatal(err)
		}
		car := filepath.Join(dir, "x.car")
		if err := os.WriteFile(car, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out := run("dag", "import", "--offline", "--stats", car)
		if !strings.Contains(out, "Pinned root\t"+im.Cap.Root.String()+"\tsuccess") {
			t.Fatalf("ipfs dag import of %s:\n%s", im.Cap.Root, out)
		}
		if o.Public && i == 0 {
			file := filepath.Join(dir, "x")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(run("add", "--only-hash", "--offline", "--cid-version=1", "--raw-leaves", "-Q", file)); got != im.Cap.Root.String() {
				t.Fatalf("ipfs add: %s, ours %s", got, im.Cap.Root)
			}
		}
	}
}
