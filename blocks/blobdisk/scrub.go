package blobdisk

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	"github.com/multiformats/go-multihash"
)

// runScrub reads every block file modified at or after since, checks it
// against its key and deletes those that do not match (what a crash left
// of a write that syncfs had not reached: a file cut short, zeros, or
// garbage). It reads at most ScrubRate bytes a second, one file at a
// time, and ends early with ctx. The stats are kept for Scrub; the scrub
// is marked done (and the next sync may record a checkpoint) only when
// it went through the whole directory.
func (d *Disk) runScrub(ctx context.Context, since time.Time) {
	start := d.cfg.Now()
	var read int64
	err := d.walkBlocks(ctx, func(path string, key ds.Key, info fs.FileInfo) error {
		if info.ModTime().Before(since) {
			return nil
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		read += int64(len(data))
		ok := err == nil && matches(key, data)
		d.mu.Lock()
		d.scrub.Checked++
		d.mu.Unlock()
		if !ok {
			if err := d.Datastore.Delete(ctx, key); err != nil {
				return err
			}
			d.mu.Lock()
			d.scrub.Deleted++
			d.mu.Unlock()
			d.log.Load().Warn("blob store: a block damaged by an unclean stop was deleted", "key", key.String(), "err", err)
		}
		// Bound the I/O: sleep until read bytes fit the rate.
		if ahead := time.Duration(float64(read)/float64(d.cfg.ScrubRate)*float64(time.Second)) - d.cfg.Now().Sub(start); ahead > 0 {
			select {
			case <-time.After(ahead):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &d.scrub
	if err != nil {
		st.Err = err.Error()
		d.log.Load().Warn("blob store: scrub after an unclean stop ended early; it runs again at the next start", "checked", st.Checked, "deleted", st.Deleted, "err", err)
		return
	}
	st.Done = true
	close(d.scrubCh)
	d.log.Load().Info("blob store: scrubbed after an unclean stop", "since", since, "checked", st.Checked, "deleted", st.Deleted, "took", d.cfg.Now().Sub(start))
}

// matches reports whether data hashes to the multihash that key encodes
// (false for a key that is no multihash, or a hash not computable).
func matches(key ds.Key, data []byte) bool {
	h, err := dshelp.DsKeyToMultihash(key)
	if err != nil {
		return false
	}
	dec, err := multihash.Decode(h)
	if err != nil {
		return false
	}
	sum, err := multihash.Sum(data, dec.Code, dec.Length)
	if err != nil {
		return false
	}
	return bytes.Equal(sum, h)
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
