package blobdisk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	"github.com/multiformats/go-multihash"
)

// runScrub scrubs (scrubOnce) until a round goes through the whole
// directory, waiting longer after each round that failed (from 10 s to
// 10 min), or until ctx ends. Only then is the scrub marked done (and
// the next sync may record a checkpoint, and the DAGs be checked again).
func (d *Disk) runScrub(ctx context.Context, since time.Time) {
	start := d.cfg.Now()
	wait := d.retry
	for {
		err := d.scrubOnce(ctx, since)
		d.mu.Lock()
		st := &d.scrub
		if err == nil {
			st.Done, st.Err = true, ""
			close(d.scrubCh)
			d.log.Load().Info("blob store: scrubbed after an unclean stop", "since", since, "checked", st.Checked, "deleted", st.Deleted, "took", d.cfg.Now().Sub(start))
			d.mu.Unlock()
			return
		}
		if ctx.Err() != nil {
			d.mu.Unlock()
			return // stopped: the next start scrubs again
		}
		st.Err = err.Error()
		d.log.Load().Warn("blob store: scrub after an unclean stop ended early; trying again", "checked", st.Checked, "deleted", st.Deleted, "err", err, "in", wait)
		d.mu.Unlock()
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, 10*time.Minute)
	}
}

// statCost is what the scrub counts against ScrubRate for each file it
// only stats (a directory entry and an inode read).
const statCost = 512

// scrubOnce reads every block file modified at or after since, checks it
// against its key and deletes those that do not match (what a crash left
// of a write that syncfs had not reached: a file cut short, zeros, or
// garbage) or that the disk cannot read (EIO). It reads at most ScrubRate
// bytes a second (counting statCost for each file it stats), one file at
// a time, and ends early with ctx or any other error: a file it could
// not read for another reason (EMFILE, ENOMEM, EACCES...) is no proof of
// damage. A key whose hash this build cannot compute is left alone.
func (d *Disk) scrubOnce(ctx context.Context, since time.Time) error {
	start := d.cfg.Now()
	var read int64
	return d.walkBlocks(ctx, func(path string, key ds.Key, info fs.FileInfo) error {
		read += statCost
		if !info.ModTime().Before(since) {
			data, fi, err := readBlockFile(path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return nil // deleted meanwhile
			case err != nil && !errors.Is(err, syscall.EIO):
				return fmt.Errorf("blobdisk: scrub: read %s: %w", path, err)
			}
			read += int64(len(data))
			ok, known := true, true
			if err == nil {
				ok, known = matches(key, data)
			}
			d.mu.Lock()
			d.scrub.Checked++
			d.mu.Unlock()
			if known && (!ok || err != nil) {
				if err := d.deleteIfSame(ctx, path, key, fi); err != nil {
					return err
				}
			}
		}
		// Bound the I/O: sleep until what was read fits the rate.
		if ahead := time.Duration(float64(read)/float64(d.cfg.ScrubRate)*float64(time.Second)) - d.cfg.Now().Sub(start); ahead > 0 {
			select {
			case <-time.After(ahead):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
}

// readBlockFile is readFile; a variable, for tests.
var readBlockFile = readFile

// readFile reads the file at path and returns its data and the stat of
// the file read (nil if it could not be opened).
func readFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(f)
	return data, fi, err
}

// deleteIfSame deletes the damaged block file at path (key), unless it is
// no longer the file read (fi): a delete and a correct write of the same
// block since (flatfs writes a new file and renames it over) leave a
// good file that must stay. A window remains between that check and the
// unlink, as short as a stat.
func (d *Disk) deleteIfSame(ctx context.Context, path string, key ds.Key, fi fs.FileInfo) error {
	if fi != nil {
		now, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return fmt.Errorf("blobdisk: scrub: %w", err)
		}
		if !os.SameFile(fi, now) || !fi.ModTime().Equal(now.ModTime()) || fi.Size() != now.Size() {
			return nil // written again meanwhile
		}
	}
	if err := d.Datastore.Delete(ctx, key); err != nil {
		return fmt.Errorf("blobdisk: scrub: delete %s: %w", key, err)
	}
	d.mu.Lock()
	d.scrub.Deleted++
	d.mu.Unlock()
	d.log.Load().Warn("blob store: a block damaged by an unclean stop was deleted", "key", key.String())
	return nil
}

// matches reports whether data hashes to the multihash that key encodes;
// known is false for a key that is no multihash or whose hash this build
// cannot compute (such a block is left alone: blocks accepts any known
// hash).
func matches(key ds.Key, data []byte) (ok, known bool) {
	h, err := dshelp.DsKeyToMultihash(key)
	if err != nil {
		return false, false
	}
	dec, err := multihash.Decode(h)
	if err != nil {
		return false, false
	}
	sum, err := multihash.Sum(data, dec.Code, dec.Length)
	if err != nil {
		return false, false
	}
	return bytes.Equal(sum, h), true
}

// walkBlocks calls fn for each block file of the flatfs (the .data files
// of its shard directories), with its datastore key.
func (d *Disk) walkBlocks(ctx context.Context, fn func(path string, key ds.Key, info fs.FileInfo) error) error {
	shards, err := os.ReadDir(d.path)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() || strings.HasPrefix(sh.Name(), ".") {
			continue
		}
		dir := filepath.Join(d.path, sh.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			name, ok := strings.CutSuffix(f.Name(), ".data")
			if !ok || f.IsDir() {
				continue
			}
			info, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			if err := fn(filepath.Join(dir, f.Name()), ds.NewKey(name), info); err != nil {
				return err
			}
		}
	}
	return nil
}
