//go:build unix

package datadir

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ipfs/go-datastore"
)

// otherUID is the user the tests act as "another local user": nobody.
const otherUID = 65534

// asOtherEnv makes the test binary, run as otherUID, read the files named
// in it (one a line) or open the data dir named in asOtherOpenEnv.
const (
	asOtherReadEnv = "EXOPEER_TEST_READ_AS_OTHER"
	asOtherOpenEnv = "EXOPEER_TEST_OPEN_AS_OTHER"
)

// TestAsOtherUser is the child side of runAsOther: it does nothing unless
// the parent set one of the variables.
func TestAsOtherUser(t *testing.T) {
	if files := os.Getenv(asOtherReadEnv); files != "" {
		for f := range strings.SplitSeq(files, "\n") {
			if _, err := os.ReadFile(f); err == nil {
				t.Errorf("READABLE %s", f)
			} else if !errors.Is(err, fs.ErrPermission) {
				t.Errorf("reading %s: %v, want a permission error", f, err)
			}
		}
	}
	if dir := os.Getenv(asOtherOpenEnv); dir != "" {
		d, err := OpenDir(dir)
		if err == nil {
			d.Close()
			t.Fatal("OPENED")
		}
		t.Logf("REFUSED: %v", err)
	}
}

// runAsOther runs TestAsOtherUser in a copy of the test binary as
// otherUID with env, and returns its output. It needs root to switch user.
func runAsOther(t *testing.T, env string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	// The copy of the binary must be reachable by the other user.
	binDir := t.TempDir()
	for d := binDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "datadir.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^TestAsOtherUser$", "-test.v", "-test.count=1")
	cmd.Dir = binDir
	cmd.Env = append(os.Environ(), env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestOpenDirMakesDataDirPrivate: an existing data dir open to others
// (0755, as a plain mkdir leaves it) is made 0700, so is the datastore, and
// another local user can read none of the files under it: not the node key,
// the token, or the leveldb files that hold the cell's secrets.
func TestOpenDirMakesDataDirPrivate(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "exo")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Datastore.Put(t.Context(), datastore.NewKey("/cell/secret"), []byte("the cell key")); err != nil {
		t.Fatal(err)
	}
	if err := d.Blobs.Put(t.Context(), datastore.NewKey("/CIQBLOCK"), []byte("a block of a file")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, DatastoreDir), filepath.Join(dir, BlobsDir)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s mode = %04o, want 0700", p, fi.Mode().Perm())
		}
	}
	var files []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if len(files) < 5 {
		t.Fatalf("files under the data dir: %v", files)
	}
	out, err := runAsOther(t, asOtherReadEnv+"="+strings.Join(files, "\n"))
	if err != nil || strings.Contains(out, "READABLE") {
		t.Errorf("another user could read files of the data dir (%v):\n%s", err, out)
	}
}

// TestOpenDirRefusesDirItCannotMakePrivate: a data dir open to others that
// this user cannot chmod (it belongs to someone else) stops start-up with a
// message naming the dir and the fix.
func TestOpenDirRefusesDirItCannotMakePrivate(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "exo")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // writable by the other user, owned by root
		t.Fatal(err)
	}
	out, err := runAsOther(t, asOtherOpenEnv+"="+dir)
	if err != nil || !strings.Contains(out, "REFUSED") {
		t.Fatalf("OpenDir by another user (%v):\n%s", err, out)
	}
	for _, want := range []string{"data dir " + dir, "mode 0777", "chmod 700 " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal should say %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("the refused dir was written: %v", entries)
	}
}

// TestOpenDirRefusesDirOfAnotherUser: a data dir that belongs to another
// user (a --dir, or a symlink to one, that someone else made first) is
// refused even when this user can make it private, as root can: its owner
// could read everything written into it, or chmod it open again.
func TestOpenDirRefusesDirOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a dir to another user")
	}
	parent := t.TempDir()
	theirs := filepath.Join(parent, "theirs")
	if err := os.Mkdir(theirs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "link")
	if err := os.Symlink(theirs, link); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{theirs, link} {
		d, err := OpenDir(dir)
		if err == nil {
			d.Close()
			t.Errorf("OpenDir(%s) of a dir owned by uid %d succeeded", dir, otherUID)
			continue
		}
		for _, want := range []string{"data dir " + dir, "owned by another user", strconv.Itoa(otherUID)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("OpenDir(%s): %v; should say %q", dir, err, want)
			}
		}
	}
	if entries, _ := os.ReadDir(theirs); len(entries) > 0 {
		t.Errorf("the refused dir was written: %v", entries)
	}
}

// TestOpenDirRefusesFilesOfAnotherUser: a node key, API token or config
// file that another user put in the data dir while it was open to them
// (mode 0600, so the mode check passes) is refused: that user knows the
// secrets, and with them could drive the node through its control API or
// pose as the node; and chose the config (where the API listens, which
// peers the node boots from).
func TestOpenDirRefusesFilesOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	for _, name := range []string{TokenFile, KeyFile, ConfigFile} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "exo")
			if _, err := Init(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := loadToken(filepath.Join(dir, TokenFile)); err != nil {
				t.Fatal(err)
			}
			planted := filepath.Join(dir, name)
			if err := os.Chown(planted, otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			d, err := OpenDir(dir)
			if err == nil {
				d.Close()
				t.Fatalf("OpenDir took %s owned by uid %d", name, otherUID)
			}
			for _, want := range []string{planted, "owned by another user", strconv.Itoa(otherUID)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("OpenDir: %v; should say %q", err, want)
				}
			}
		})
	}
}
