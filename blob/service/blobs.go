package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/pin"
	"github.com/exopeer/exopeer/blocks"
)

// Pin reasons the service gives (besides "file:<entity id>", see
// fileReason).
const (
	// ReasonManual: a blob added by hand (AddBlob, AddPath).
	ReasonManual = "manual"
	// ReasonFetch: a fetch under way, or interrupted (it resumes at the
	// next start).
	ReasonFetch = "fetch"
)

// AddOptions tunes an add.
type AddOptions struct {
	// Public adds plain UnixFS, readable by anyone who has the CID, and
	// served to anyone (the root CID is the one Kubo gives).
	Public bool
	// Progress gets the plaintext bytes imported so far, from one
	// goroutine, in order.
	Progress func(done int64)
}

// ownPutter puts an import's blocks through the exchange: stored
// without hashing again (the import computed their CIDs), and announced.
type ownPutter struct{ x *blocks.Exchange }

func (p ownPutter) PutMany(ctx context.Context, bs []blockformat.Block) error {
	return p.x.PutOwn(ctx, bs)
}

// importAs runs imp with a holding putter (pin.Holding), then pins the result under
// reason (and records it public if it is); the blocks are held until
// then, so that a collection meanwhile keeps them. On failure nothing is
// pinned: the blocks are garbage for the next collection.
func (s *Service) importAs(ctx context.Context, reason string, imp func(ctx context.Context, dst blob.BlockPutter) (blob.Imported, error)) (blob.Imported, error) {
	ctx, cancel, err := s.bound(ctx)
	if err != nil {
		return blob.Imported{}, err
	}
	defer cancel()
	put := s.pins.Holding(ownPutter{s.xchg})
	defer put.Release()
	im, err := imp(ctx, put)
	if err != nil {
		return blob.Imported{}, err
	}
	if reason != "" {
		if err := s.pins.Pin(ctx, im.Cap.Root, reason); err != nil {
			return blob.Imported{}, fmt.Errorf("blobs: pin %s: %w", im.Cap.Root, err)
		}
		if sealedDir(im.Cap) {
			sess := s.xchg.NewSession(ctx, blocks.SessionOptions{})
			err := s.pinTree(ctx, sess, im.Cap)
			sess.Close()
			if err != nil {
				return blob.Imported{}, err
			}
		}
	}
	if im.Cap.Public {
		if err := s.markPublic(ctx, im.Cap.Root); err != nil {
			return blob.Imported{}, err
		}
	}
	s.markWhole(ctx, im.Cap.Root)
	s.checkDisk()
	return im, nil
}

func (s *Service) importOptions(o AddOptions, secret []byte) blob.ImportOptions {
	io := blob.ImportOptions{Public: o.Public, Rand: s.cfg.Rand, Progress: o.Progress}
	if !o.Public {
		io.Secret = secret
	}
	return io
}

// AddBlob imports r as one blob under a random key (or public), pins it
// "manual" and returns its capability. Its blocks are announced to the
// exchange. It blocks until r ends and the blocks are on disk.
func (s *Service) AddBlob(ctx context.Context, r io.Reader, o AddOptions) (blob.Imported, error) {
	return s.importAs(ctx, ReasonManual, func(ctx context.Context, dst blob.BlockPutter) (blob.Imported, error) {
		return blob.Import(ctx, r, dst, s.importOptions(o, nil))
	})
}

// AddPath imports the file or folder at path on the node's disk as one
// blob (a folder as a directory blob), pins it "manual" and returns its
// capability. In a cell its key (each file's) is derived from the cell's
// blob secret and the content, so the same file added anywhere in the
// cell is one blob; in no cell it is random.
func (s *Service) AddPath(ctx context.Context, path string, o AddOptions) (blob.Imported, error) {
	return s.addPath(ctx, path, o, ReasonManual)
}

func (s *Service) addPath(ctx context.Context, path string, o AddOptions, reason string) (blob.Imported, error) {
	var secret []byte
	if _, err := s.member(); err == nil && !o.Public {
		if _, secret, err = s.cell.BlobSecret(); err != nil {
			return blob.Imported{}, fmt.Errorf("blobs: %w", err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return blob.Imported{}, fmt.Errorf("blobs: %w", err)
	}
	opts := s.importOptions(o, secret)
	if fi.IsDir() {
		return s.importAs(ctx, reason, func(ctx context.Context, dst blob.BlockPutter) (blob.Imported, error) {
			return blob.ImportDir(ctx, os.DirFS(path), dst, opts)
		})
	}
	if !fi.Mode().IsRegular() {
		return blob.Imported{}, fmt.Errorf("blobs: %s is neither a file nor a folder", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return blob.Imported{}, fmt.Errorf("blobs: %w", err)
	}
	defer f.Close()
	return s.importAs(ctx, reason, func(ctx context.Context, dst blob.BlockPutter) (blob.Imported, error) {
		return blob.ImportFile(ctx, f, fi.Size(), dst, opts)
	})
}

// Open returns a reader of the blob c names, whose blocks come from the
// store or, those missing, from the peers that hold them, through one
// bitswap session, when a read needs them. Blocks fetched are stored, not
// pinned: they stay until the next collection. The reader works until ctx
// ends or the service closes; Close it.
func (s *Service) Open(ctx context.Context, c blob.Capability) (*blob.Reader, error) {
	sctx, err := s.live()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(sctx, cancel)
	context.AfterFunc(ctx, func() { stop() })
	sess := s.xchg.NewSession(ctx, blocks.SessionOptions{Public: c.Public, OnBlock: s.onBlock(c, nil)})
	r, err := blob.Open(ctx, sess, c, blob.ReaderOptions{})
	if err != nil {
		cancel()
		return nil, err
	}
	return r, nil
}

// onBlock returns the session callback for a fetch of c: a public blob's
// blocks are served to anyone as they arrive; then f, if set.
func (s *Service) onBlock(c blob.Capability, f func(peer.ID, cid.Cid, int)) func(peer.ID, cid.Cid, int) {
	return func(p peer.ID, k cid.Cid, size int) {
		if c.Public {
			s.servePublic(k)
		}
		if f != nil {
			f(p, k, size)
		}
	}
}

// Export writes the DAG of c as a CARv1 file to w (root first, each
// block once: `ipfs dag import` takes it), fetching the blocks the node
// does not hold. For an encrypted folder given with its key, the blocks
// of every entry follow (blob.ExportTree); only the root CID and, for a
// sealed folder, the key are read of c.
func (s *Service) Export(ctx context.Context, w io.Writer, c blob.Capability) error {
	ctx, cancel, err := s.bound(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	sess := s.xchg.NewSession(ctx, blocks.SessionOptions{Public: c.Public})
	defer sess.Close()
	if _, _, err := blob.ExportTree(ctx, w, sess, c); err != nil {
		return fmt.Errorf("blobs: export %s: %w", c.Root, err)
	}
	return nil
}

// GC deletes every blob block that no pinned root reaches and no import
// or fetch under way holds (the entries of a folder no longer pinned are
// unpinned first). One at a time.
func (s *Service) GC(ctx context.Context) (pin.GCStats, error) {
	if _, err := s.live(); err != nil {
		return pin.GCStats{}, err
	}
	if err := s.sweepDirPins(ctx); err != nil {
		return pin.GCStats{}, err
	}
	st, err := s.pins.GC(ctx)
	for _, r := range st.Damaged {
		// A corrupt node went with all below it: fetch the DAG again.
		s.log.Warn("blob gc: a pinned DAG had a corrupt node; no longer held whole", "root", r)
		s.forgetWhole(ctx, r)
	}
	if err != nil {
		return st, fmt.Errorf("blobs: gc: %w", err)
	}
	s.log.Info("blob gc", "deleted", st.Deleted, "kept", st.Kept, "freed", st.Freed, "took", st.Took)
	// The public and shared sets name what the node holds: no more the
	// blocks just deleted.
	if err := s.loadAccess(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// checkDisk asks the follower to look at the disk budget.
func (s *Service) checkDisk() {
	if s.cfg.DiskBudget <= 0 {
		return
	}
	select {
	case s.gcKick <- struct{}{}:
	default:
	}
}

// overDisk collects garbage if the blob blocks are over the disk budget.
func (s *Service) overDisk(ctx context.Context) {
	if s.cfg.DiskBudget <= 0 {
		return
	}
	over, u, err := s.pins.OverBudget(ctx, s.cfg.DiskBudget)
	if err != nil {
		s.log.Warn("blob usage", "err", err)
		return
	}
	s.floorMu.Lock()
	floor, unpins := s.gcFloor, s.unpins
	if !over {
		s.gcFloor = 0
	}
	s.floorMu.Unlock()
	if !over || floor > 0 && u.Bytes <= floor {
		return // under, or what is pinned is over the budget: nothing to collect
	}
	s.log.Info("blob blocks over the disk budget: collecting", "bytes", u.Bytes, "budget", s.cfg.DiskBudget)
	if _, err := s.GC(ctx); err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("blob gc", "err", err)
		}
		return
	}
	if over, u, err := s.pins.OverBudget(ctx, s.cfg.DiskBudget); err == nil && over {
		s.floorMu.Lock()
		if s.unpins == unpins { // nothing unpinned meanwhile
			s.gcFloor = u.Bytes
			s.log.Warn("blob blocks kept are over the disk budget", "bytes", u.Bytes, "budget", s.cfg.DiskBudget)
		}
		s.floorMu.Unlock()
	}
}

// unpinned tells the disk budget's check that blocks may be garbage now.
func (s *Service) unpinned() {
	s.floorMu.Lock()
	defer s.floorMu.Unlock()
	s.gcFloor = 0
	s.unpins++
}
