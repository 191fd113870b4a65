package dht

import (
	"bytes"
	"context"
	"fmt"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
)

// PutSigned stores a record that someone else signed (SealRecord), under
// its DHT key, once: it is not republished (the caller puts it again,
// before kad-dht's servers drop it, 48 h after they received it, if it
// must live longer). The record is validated first, at the node's time,
// and refused with the Validator's error if it does not validate under
// key. It blocks until the store is done or ctx is done. PutSigned does
// not keep record.
func (d *DHT) PutSigned(ctx context.Context, key string, record []byte) error {
	if _, err := OpenRecord(key, record, d.now()); err != nil {
		return err
	}
	_, tables, err := d.running()
	if err != nil {
		return err
	}
	err = d.do(ctx, func(ctx context.Context) error {
		return eachTable(tables, func(k *kaddht.IpfsDHT) error { return k.PutValue(ctx, key, record) })
	})
	if err != nil {
		return fmt.Errorf("dht: put signed record: %w", err)
	}
	return nil
}

// GetSigned finds the best valid record under key, whoever signed it, and
// returns its value (a new slice), sequence number and expiry. It blocks
// until the lookup ends or ctx is done. ErrNotFound means no peer holds a
// valid, unexpired record; a key not of the form "/exo/<peer ID>/<name>"
// is ErrBadKey.
func (d *DHT) GetSigned(ctx context.Context, key string) (Record, error) {
	if _, _, err := parseKey(key); err != nil {
		return Record{}, err
	}
	rt, _, err := d.running()
	if err != nil {
		return Record{}, err
	}
	var b []byte
	err = d.do(ctx, func(ctx context.Context) (err error) {
		b, err = rt.GetValue(ctx, key)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("dht: get signed record: %w", mapErr(err))
	}
	r, err := OpenRecord(key, b, d.now())
	if err != nil {
		return Record{}, err
	}
	r.Value = bytes.Clone(r.Value)
	return r, nil
}
