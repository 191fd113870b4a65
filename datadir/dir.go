package datadir

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	leveldb "github.com/ipfs/go-ds-leveldb"

	"github.com/exopeer/exopeer/blocks/blobdisk"
	"github.com/exopeer/exopeer/internal/dirlock"
)

// The files of a data dir.
const (
	ConfigFile   = "config.toml" // the configuration, commented
	KeyFile      = "node.key"    // the Ed25519 node key, PKCS#8 PEM, mode 0600
	TokenFile    = "api.token"   // the control API token, mode 0600
	APIFile      = "api"         // the control API's address while the node runs
	LockFile     = "lock"        // held (flock) by the running node; holds its PID
	DatastoreDir = "datastore"   // the node's leveldb
	BlobsDir     = "blobs"       // the blocks of blobs: flatfs, one file per block
)

// ErrLocked means another node is running on the data dir.
var ErrLocked = dirlock.ErrLocked

// DefaultDir returns the data dir used when none is named: "exopeer" under
// the user's data directory ($XDG_DATA_HOME or ~/.local/share on Linux and
// BSD, ~/Library/Application Support on macOS, %LocalAppData% on Windows).
// It does not read $EXOPEER_DIR: the CLI binds that to its --dir flag.
func DefaultDir() (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "exopeer"), nil
		}
	case "darwin", "ios":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the data dir: %w", err)
		}
		return filepath.Join(home, "Library", "Application Support", "exopeer"), nil
	default:
		if d := os.Getenv("XDG_DATA_HOME"); d != "" {
			return filepath.Join(d, "exopeer"), nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the data dir (set --dir or EXOPEER_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "share", "exopeer"), nil
}

// Init creates the data dir (mode 0700), the node key and the commented
// config file where they are missing. An existing data dir that other users
// can enter is made private (0700), or refused naming the fix when that
// fails. It never overwrites a file, and a malformed existing file is
// reported naming it. It returns the paths it created.
func Init(dir string) (created []string, err error) {
	created, _, err = initDir(dir)
	return created, err
}

// initDir is Init, and also says whether it made the data dir private.
func initDir(dir string) (created []string, madePrivate bool, err error) {
	if madePrivate, err = privateDir("data dir", dir); err != nil {
		return nil, false, err
	}
	keyPath := filepath.Join(dir, KeyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("generate node key: %w", err)
		}
		pemBytes, err := EncodeKey(priv)
		if err != nil {
			return nil, false, err
		}
		if err := writeNew(keyPath, pemBytes, 0o600); err != nil {
			return nil, false, err
		}
		created = append(created, keyPath)
	} else if _, err := loadKey(keyPath); err != nil {
		return nil, false, err
	}
	cfgPath := filepath.Join(dir, ConfigFile)
	if fi, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
		if err := writeNew(cfgPath, []byte(DefaultConfigFile), 0o644); err != nil {
			return nil, false, err
		}
		created = append(created, cfgPath)
	} else if err != nil {
		return nil, false, fmt.Errorf("config file: %w", err)
	} else if err := ownFile("config file", cfgPath, fi); err != nil {
		return nil, false, err
	} else if _, err := LoadConfig(cfgPath); err != nil {
		return nil, false, err
	}
	return created, madePrivate, nil
}

// privateDir creates dir (mode 0700) where it is missing and takes the
// group's and others' permissions off an existing one: the node key, the
// token and the datastore (which holds the cell key, the box key and the
// epoch secrets) are the owner's alone, and a file inside a dir others
// cannot enter is out of their reach whatever its own mode (leveldb creates
// its files 0644). It reports whether it changed the mode, and refuses, naming
// the path and the fix, a dir it cannot make private, and one owned by
// another user (even if this one is root: the owner could read it or open
// it again). what names dir in messages.
func privateDir(what, dir string) (changed bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create %s: %w", what, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s %s is not a directory", what, dir)
	}
	mode := fi.Mode().Perm()
	if runtime.GOOS != "windows" && mode&0o077 != 0 {
		if err := os.Chmod(dir, mode&^0o077); err != nil {
			return false, fmt.Errorf("%s %s is accessible by other users (mode %04o) and could not be made private; as its owner run: chmod 700 %s: %w", what, dir, mode, dir, err)
		}
		changed = true
	}
	if uid, other := ownerOther(fi); other {
		return changed, fmt.Errorf("%s %s is owned by another user (uid %d), who could read it; use a dir of your own, or as root run: chown %d %s", what, dir, uid, os.Geteuid(), dir)
	}
	return changed, nil
}

// writeNew writes a file that must not exist yet, atomically: the data goes
// to a temporary file that is synced and then linked into place, so a crash
// leaves either no file or the whole file, and an existing file is never
// replaced.
func writeNew(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// loadKey reads node.key, refusing a key others can read.
func loadKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("node key %s is accessible by other users (mode %04o); run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	if err := ownFile("node key", path, fi); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	k, err := DecodeKey(data)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	return k, nil
}

// ownFile refuses a secret file (what, at path) that belongs to another
// user: one put there while the data dir was open to others, whose content
// that user knows whatever its mode.
func ownFile(what, path string, fi fs.FileInfo) error {
	if uid, other := ownerOther(fi); other {
		return fmt.Errorf("%s %s is owned by another user (uid %d), who may know it; if it is yours, as root run: chown %d %s; else delete it", what, path, uid, os.Geteuid(), path)
	}
	return nil
}

// Dir is an open, locked data dir: what `exopeer run` gives the Node.
type Dir struct {
	Path      string
	Key       ed25519.PrivateKey // the node key: peer.NodeOptions makes it the libp2p identity
	Config    Config
	Token     string             // the control API token
	Datastore *leveldb.Datastore // the node's leveldb: everything but blob blocks
	Blobs     *blobdisk.Disk     // the blocks of blobs (blocks.NewStoreWith): flatfs, synced in the background
	// MadePrivate lists the dirs OpenDir found open to other users and
	// made 0700 (the data dir, the datastore), for the caller to report.
	MadePrivate []string

	mu   sync.Mutex // guards lock and closing the datastore
	lock *os.File
}

// OpenDir initialises dir if needed, takes its lock, and opens the key, the
// config, the API token and the datastore. A second OpenDir on the same dir,
// from this process or another, fails with ErrLocked while the first is
// open. Close releases everything.
func OpenDir(dir string) (*Dir, error) {
	_, madePrivate, err := initDir(dir)
	if err != nil {
		return nil, err
	}
	lf, err := dirlock.Lock(filepath.Join(dir, LockFile))
	if err != nil {
		return nil, err
	}
	d := &Dir{Path: dir, lock: lf}
	// An api file here is a dead node's (killed outright): its port may be
	// anyone's now. Until this node writes its own, no client may read it.
	if err := os.Remove(filepath.Join(dir, APIFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = dirlock.Unlock(lf)
		return nil, fmt.Errorf("remove the stale api file: %w", err)
	}
	if madePrivate {
		d.MadePrivate = append(d.MadePrivate, dir)
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	if d.Key, err = loadKey(filepath.Join(dir, KeyFile)); err != nil {
		return nil, err
	}
	if d.Config, err = LoadConfig(filepath.Join(dir, ConfigFile)); err != nil {
		return nil, err
	}
	if d.Token, err = loadToken(filepath.Join(dir, TokenFile)); err != nil {
		return nil, err
	}
	dsPath := filepath.Join(dir, DatastoreDir)
	if changed, err := privateDir("datastore", dsPath); err != nil {
		return nil, err
	} else if changed {
		d.MadePrivate = append(d.MadePrivate, dsPath)
	}
	d.Datastore, err = leveldb.NewDatastore(dsPath, nil)
	if err != nil {
		return nil, fmt.Errorf("open datastore %s: %w", filepath.Join(dir, DatastoreDir), err)
	}
	blobsPath := filepath.Join(dir, BlobsDir)
	if changed, err := privateDir("blob store", blobsPath); err != nil {
		return nil, err
	} else if changed {
		d.MadePrivate = append(d.MadePrivate, blobsPath)
	}
	if d.Blobs, err = openBlobs(blobsPath); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// openBlobs opens the blob store in the existing directory path (empty
// the first time, also in a data dir made before blobs were) and starts
// its syncer: a flatfs directory sharded by the next to last two
// characters of each key (Kubo's layout), written without an fsync per
// block, synced in the background (syncfs) with a checkpoint after each
// sync, and scrubbed in the background after a run that did not close
// cleanly (blobdisk.Disk). Dir.Close stops it with a final sync. See
// blocks/README.md for the measurement that chose flatfs.
func openBlobs(path string) (*blobdisk.Disk, error) {
	b, err := blobdisk.Open(path, blobdisk.Config{})
	if err != nil {
		return nil, fmt.Errorf("open the blob store %s: %w", path, err)
	}
	if err := b.Start(); err != nil {
		b.Close()
		return nil, fmt.Errorf("open the blob store %s: %w", path, err)
	}
	return b, nil
}

// Close closes the datastores, removes the api file and releases the lock.
// It is idempotent and safe for concurrent use.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	if d.Blobs != nil {
		err = d.Blobs.Close()
		d.Blobs = nil
	}
	if d.Datastore != nil {
		err = errors.Join(err, d.Datastore.Close())
		d.Datastore = nil
	}
	if d.lock != nil {
		_ = os.Remove(filepath.Join(d.Path, APIFile))
		err = errors.Join(err, dirlock.Unlock(d.lock))
		d.lock = nil
	}
	return err
}

// loadToken reads the API token, creating it on first use, and refuses a
// token others can read, as loadKey refuses such a key.
func loadToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("api token %s is accessible by other users (mode %04o); run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	if err == nil {
		if err := ownFile("api token", path, fi); err != nil {
			return "", err
		}
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var b [32]byte
		_, _ = rand.Read(b[:])
		tok := hex.EncodeToString(b[:])
		if err := writeNew(path, []byte(tok+"\n"), 0o600); err != nil {
			return "", err
		}
		return tok, nil
	}
	if err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	tok, err := parseToken(data)
	if err != nil {
		return "", fmt.Errorf("api token %s: %w", path, err)
	}
	return tok, nil
}

// ErrBadToken means api.token does not hold a token.
var ErrBadToken = errors.New("datadir: malformed api token (want hex, at least 32 digits); delete the file to get a new one")

// parseToken reads the content of api.token: hex, at least 16 bytes, and
// white space around it.
func parseToken(data []byte) (string, error) {
	tok := strings.TrimSpace(string(data))
	if b, err := hex.DecodeString(tok); err != nil || len(b) < 16 {
		return "", ErrBadToken
	}
	return tok, nil
}

// LockFree reports whether the data dir's lock is free, that is whether no
// node holds it. It takes and releases the lock to find out.
func LockFree(dir string) (bool, error) {
	return dirlock.Free(filepath.Join(dir, LockFile))
}
