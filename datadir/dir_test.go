package datadir

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ipfs/go-datastore"
)

func TestInitCreatesFilesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exo")
	created, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 {
		t.Fatalf("created %v, want the key and the config", created)
	}
	modes := map[string]os.FileMode{KeyFile: 0o600, ConfigFile: 0o644}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != want {
			t.Errorf("%s mode = %04o, want %04o", name, fi.Mode().Perm(), want)
		}
	}
	fi, _ := os.Stat(dir)
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %04o, want 0700", fi.Mode().Perm())
	}
	key1, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	created, err = Init(dir)
	if err != nil || len(created) != 0 {
		t.Fatalf("second Init = %v, %v; want nothing created", created, err)
	}
	key2, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if !bytes.Equal(key1, key2) {
		t.Error("second Init replaced the node key")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// A malformed file stops start-up with a message naming it, and nothing is
// overwritten.
func TestMalformedFilesAreReportedNotReplaced(t *testing.T) {
	tests := []struct {
		name, file, content, want string
		mode                      os.FileMode
	}{
		{"key garbage", KeyFile, "not a key", "no PEM block", 0o600},
		{"key too open", KeyFile, "", "accessible by other users", 0o644},
		{"config syntax", ConfigFile, "[network\n", "config", 0o644},
		{"config unknown key", ConfigFile, "colour = 1\n", "unknown setting(s): colour", 0o644},
		{"token", TokenFile, "xyz\n", "api token", 0o600},
		{"token too open", TokenFile, "00112233445566778899aabbccddeeff\n", "accessible by other users", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode&0o077 != 0 && runtime.GOOS == "windows" {
				t.Skip("no Unix permissions")
			}
			dir := t.TempDir()
			if _, err := Init(dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.file)
			content := []byte(tt.content)
			if tt.content == "" {
				content, _ = os.ReadFile(path)
			}
			if err := os.WriteFile(path, content, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			d, err := OpenDir(dir)
			if err == nil {
				d.Close()
				t.Fatal("OpenDir accepted a malformed file")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should contain %q and name %s", err, tt.want, path)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, content) {
				t.Errorf("%s was changed", tt.file)
			}
			// The lock is released on failure: fixing the file is enough.
			if _, err := os.Stat(filepath.Join(dir, LockFile)); err == nil {
				if free, err := LockFree(dir); err != nil || !free {
					t.Errorf("lock still held after a failed OpenDir (free=%v, err=%v)", free, err)
				}
			}
		})
	}
}

func TestOpenDirIsExclusive(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenDir error = %v, want ErrLocked", err)
	} else if !strings.Contains(err.Error(), "pid") {
		t.Errorf("error %q should name the holder's pid", err)
	}
	if free, _ := LockFree(dir); free {
		t.Error("lockFree says free while the dir is open")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	d2, err := OpenDir(dir)
	if err != nil {
		t.Fatalf("OpenDir after Close: %v", err)
	}
	if d2.Key == nil || d2.Token == "" || d2.Datastore == nil {
		t.Errorf("OpenDir left fields empty: %+v", d2)
	}
	d2.Close()
}

// TestDefaultDir: the user's data dir, whatever EXOPEER_DIR says: the
// CLI binds EXOPEER_DIR to --dir (cmd/exopeer, usage.txtar's "fromenv"),
// in that one place.
func TestDefaultDir(t *testing.T) {
	t.Setenv("EXOPEER_DIR", "/x/y")
	if runtime.GOOS == "linux" {
		t.Setenv("XDG_DATA_HOME", "/data")
		if d, _ := DefaultDir(); d != "/data/exopeer" {
			t.Errorf("DefaultDir with XDG_DATA_HOME and EXOPEER_DIR = %q", d)
		}
	}
	if d, _ := DefaultDir(); d == "/x/y" {
		t.Errorf("DefaultDir read EXOPEER_DIR: %q", d)
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add([]byte("00112233445566778899aabbccddeeff\n"))
	f.Add([]byte("xyz\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseToken(data)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v is not ErrBadToken", err)
			}
			return
		}
		// An accepted token is hex of at least 16 bytes, and reads back
		// the same as it is written.
		if b, err := hex.DecodeString(tok); err != nil || len(b) < 16 {
			t.Fatalf("accepted %q", tok)
		}
		if again, err := parseToken([]byte(tok + "\n")); err != nil || again != tok {
			t.Fatalf("token %q reads back as %q, %v", tok, again, err)
		}
	})
}

// TestOpenDirRemovesAStaleAPIFile: a node killed outright leaves its api
// file behind. The next node to open the dir takes it over at once: until
// it writes its own address, a client that finds the lock held must not
// read the dead node's address and send the token to whatever listens
// there now.
func TestOpenDirRemovesAStaleAPIFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, APIFile), []byte("127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := os.Stat(filepath.Join(dir, APIFile)); !os.IsNotExist(err) {
		t.Errorf("the dead node's api file is still there once the dir is open: %v", err)
	}
}

// A data dir made before blobs were (a datastore, no blobs directory)
// opens with an empty blob store, whose blocks outlive a reopen.
func TestOpenDirBlobStore(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, BlobsDir)); err != nil { // as before blobs
		t.Fatal(err)
	}
	key := datastore.NewKey("/CIQAFILEBLOCK")
	for i, put := range []bool{true, false} {
		d, err := OpenDir(dir)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if put {
			if n, err := d.Blobs.DiskUsage(t.Context()); err != nil || n > 1<<20 {
				t.Errorf("a new blob store uses %d bytes, %v", n, err)
			}
			if err := d.Blobs.Put(t.Context(), key, []byte("a block")); err != nil {
				t.Fatal(err)
			}
		} else if v, err := d.Blobs.Get(t.Context(), key); err != nil || string(v) != "a block" {
			t.Errorf("after reopening, Get = %q, %v", v, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if d.Blobs != nil || d.Datastore != nil {
			t.Error("Close left a datastore open")
		}
	}
}
