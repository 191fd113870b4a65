package peer

import (
	"fmt"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	blobservice "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/internal/ambient"
	messageservice "github.com/exopeer/exopeer/message/service"
	"github.com/exopeer/exopeer/prekey"
	"github.com/exopeer/exopeer/store/service"
)

// StoreDir is the directory of the data dir under which a store-role node
// keeps its index, one per cell (StoreDir/<cell id>/).
const StoreDir = "store"

// SpoolDir is the directory of the data dir where uploads are kept while
// they are imported (a key derived from the content needs two passes).
const SpoolDir = "spool"

// NodeOptions turns an open data dir, its config resolved (datadir.Resolve:
// `--bootstrap` is in it), into the Options of a node on the real network.
// A bad bootstrap entry is an error naming it.
func NodeOptions(d *datadir.Dir, log *slog.Logger) (Options, error) {
	cfg := d.Config.WithDefaults()
	boot, err := dht.ParseBootstrap(cfg.Network.Bootstrap)
	if err != nil {
		return Options{}, fmt.Errorf("bootstrap peers (config %s or --bootstrap): %w", d.Path+"/"+datadir.ConfigFile, err)
	}
	dcfg := dht.DefaultConfig()
	dcfg.LAN = *cfg.DHT.LAN
	dcfg.Bootstrap = boot
	switch cfg.DHT.Mode {
	case "server":
		dcfg.Mode = dht.ModeServer
	case "client":
		dcfg.Mode = dht.ModeClient
	default:
		dcfg.Mode = dht.ModeAuto
	}
	disc := discovery.DefaultConfig()
	disc.Bootstrap = boot
	static, err := ParseStaticRelays(cfg.Network.StaticRelays)
	if err != nil {
		return Options{}, fmt.Errorf("network.static_relays (config %s): %w", d.Path+"/"+datadir.ConfigFile, err)
	}
	nw := RealNetwork(cfg.Network, log)
	nw.Relays.Static = static
	key, err := crypto.UnmarshalEd25519PrivateKey(d.Key)
	if err != nil {
		return Options{}, fmt.Errorf("node key %s: %w", d.Path+"/"+datadir.KeyFile, err)
	}
	return Options{
		Store: service.Config{Dir: filepath.Join(d.Path, StoreDir)},
		Files: blobservice.Config{
			Policy: cfg.Blobs.Policy, PinBudget: int64(cfg.Blobs.PinBudgetMiB) << 20, DiskBudget: int64(cfg.Blobs.DiskBudgetMiB) << 20,
			Spool: filepath.Join(d.Path, SpoolDir),
		},
		Key:       key,
		Datastore: d.Datastore,
		Blobs:     d.Blobs,
		Network:   nw,
		DHT:       dcfg,
		Discovery: disc,
		Logger:    log,
		Doctor:    DoctorOptions{DataDir: d.Path, Port: cfg.Network.Port},
	}, nil
}

// inputs are the random sources and the clock a node hands its parts.
type inputs struct {
	now      func() time.Time
	dht      dht.Config
	disc     discovery.Config
	chain    replica.Config
	store    service.Config
	blobs    blobservice.Config
	cellRand io.Reader
	prekeys  prekey.Config
	contacts contactservice.Config
	messages messageservice.Config
}

// inputs gives each part the node's clock and a random stream of its own
// forked from o.Rand (ambient.Fork), unless the part's config has its own.
// The forks are drawn here, in a fixed order, so that a seeded o.Rand
// gives every part the same stream whatever order the parts later draw in.
func (o Options) inputs() (inputs, error) {
	in := inputs{now: ambient.NowOr(o.Now), dht: o.DHT, disc: o.Discovery, chain: o.Chain, store: o.Store, blobs: o.Files, prekeys: o.Prekeys, contacts: o.Contacts, messages: o.Messages}
	fork := func(own io.Reader, purpose string) (io.Reader, error) {
		if own != nil {
			return own, nil
		}
		r, err := ambient.Fork(o.Rand, purpose)
		if err != nil {
			return nil, fmt.Errorf("peer: %w", err)
		}
		return r, nil
	}
	var err error
	if in.disc.Rand, err = fork(in.disc.Rand, "discovery"); err != nil {
		return inputs{}, err
	}
	if in.cellRand, err = fork(nil, "cell"); err != nil {
		return inputs{}, err
	}
	if in.chain.Rand, err = fork(in.chain.Rand, "chain"); err != nil {
		return inputs{}, err
	}
	// Drawn last: a fork added after the others changes none of theirs.
	if in.store.Rand, err = fork(in.store.Rand, "store"); err != nil {
		return inputs{}, err
	}
	if in.blobs.Rand, err = fork(in.blobs.Rand, "blobs"); err != nil {
		return inputs{}, err
	}
	// After every other fork, so that the seeds of before replay unchanged.
	if in.prekeys.Rand, err = fork(in.prekeys.Rand, "prekeys"); err != nil {
		return inputs{}, err
	}
	if in.contacts.Rand, err = fork(in.contacts.Rand, "contacts"); err != nil {
		return inputs{}, err
	}
	if in.messages.Rand, err = fork(in.messages.Rand, "messages"); err != nil {
		return inputs{}, err
	}
	for _, now := range []*func() time.Time{&in.dht.Now, &in.disc.Now, &in.chain.Now, &in.store.Now, &in.blobs.Now, &in.prekeys.Now, &in.contacts.Now, &in.messages.Now} {
		if *now == nil {
			*now = in.now
		}
	}
	return in, nil
}
