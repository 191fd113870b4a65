package peer

import (
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
)

// NodeOptions turns an open data dir into the Options of a node on the real
// network. extraBootstrap (from `--bootstrap`) is added to the configured
// bootstrap list; a bad entry is an error naming it.
func NodeOptions(d *datadir.Dir, extraBootstrap []string, log *slog.Logger) (Options, error) {
	cfg := d.Config.WithDefaults()
	addrs := append(append([]string(nil), cfg.Network.Bootstrap...), extraBootstrap...)
	boot, err := dht.ParseBootstrap(addrs)
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
	key, err := crypto.UnmarshalEd25519PrivateKey(d.Key)
	if err != nil {
		return Options{}, fmt.Errorf("node key %s: %w", d.Path+"/"+datadir.KeyFile, err)
	}
	return Options{
		Key:       key,
		Datastore: d.Datastore,
		Network:   RealNetwork(cfg.Network, log),
		DHT:       dcfg,
		Discovery: disc,
		Logger:    log,
	}, nil
}
