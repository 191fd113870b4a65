package dht

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// published is a record we own and keep alive.
type published struct {
	value []byte
	seq   uint64
	next  time.Time // when the republisher next re-signs and stores it
}

// provided is a key we announce and keep announcing.
type provided struct {
	next time.Time
}

// PutRecord signs value under name with a fresh sequence number and an
// expiry of now + RecordTTL, stores it on the DHT, and keeps republishing
// it every RepublishInterval until Close. It blocks until the store is
// done or ctx is done. The sequence number is max(previous+1, now in unix
// nanoseconds), so a restarted node still supersedes its old records
// unless its clock went back. The record is kept for republishing even if
// this first store fails (ErrNoPeers, for instance): the republisher
// retries. Records live in memory only: after a restart the caller puts
// them again. PutRecord copies value.
func (d *DHT) PutRecord(ctx context.Context, name string, value []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("dht: value of %d bytes exceeds %d: %w", len(value), MaxValueSize, ErrTooLarge)
	}
	if _, _, err := d.running(); err != nil {
		return err
	}
	now := d.now()
	d.mu.Lock()
	seq := uint64(1)
	if ns := now.UnixNano(); ns > 0 {
		seq = uint64(ns)
	}
	if old, ok := d.records[name]; ok && old.seq >= seq {
		seq = old.seq + 1
	}
	value = bytes.Clone(value)
	d.records[name] = &published{value: value, seq: seq, next: now.Add(d.cfg.RepublishInterval)}
	d.mu.Unlock()
	d.wake()

	err := d.publish(ctx, name, value, seq)
	d.rescheduleRecord(name, seq, now, err)
	return err
}

// publish signs and stores one record version.
func (d *DHT) publish(ctx context.Context, name string, value []byte, seq uint64) error {
	_, tables, err := d.running()
	if err != nil {
		return err
	}
	key, enc, err := sealEnvelope(d.priv, name, value, seq, d.now().Add(d.cfg.RecordTTL))
	if err != nil {
		return err
	}
	err = d.do(ctx, func(ctx context.Context) error {
		return eachTable(tables, func(k *kaddht.IpfsDHT) error { return k.PutValue(ctx, key, enc) })
	})
	if err != nil {
		return fmt.Errorf("dht: put record %q: %w", name, err)
	}
	return nil
}

// GetRecord finds the best valid record called name published by owner
// and returns its value (a new slice). It blocks until the lookup ends or
// ctx is done. ErrNotFound means no peer holds a valid, unexpired record.
func (d *DHT) GetRecord(ctx context.Context, owner peer.ID, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	rt, _, err := d.running()
	if err != nil {
		return nil, err
	}
	key := RecordKey(owner, name)
	var b []byte
	err = d.do(ctx, func(ctx context.Context) (err error) {
		b, err = rt.GetValue(ctx, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dht: get record %q of %s: %w", name, owner, mapErr(err))
	}
	e, err := openEnvelope(key, b, d.now())
	if err != nil {
		return nil, err
	}
	return bytes.Clone(e.Value), nil
}

// Provide announces this node as a provider of key (a rendezvous key, for
// instance) and re-announces it every RepublishInterval until Unprovide
// or Close. It blocks until the announcement is stored or ctx is done; the
// key is kept for re-providing even if this first announcement fails.
func (d *DHT) Provide(ctx context.Context, key cid.Cid) error {
	if !key.Defined() {
		return errors.New("dht: provide an undefined CID")
	}
	if _, _, err := d.running(); err != nil {
		return err
	}
	now := d.now()
	d.mu.Lock()
	d.provides[key] = &provided{next: now.Add(d.cfg.RepublishInterval)}
	d.mu.Unlock()
	d.wake()

	err := d.provide(ctx, key)
	d.rescheduleKey(key, now, err)
	return err
}

func (d *DHT) provide(ctx context.Context, key cid.Cid) error {
	_, tables, err := d.running()
	if err != nil {
		return err
	}
	err = d.do(ctx, func(ctx context.Context) error {
		return eachTable(tables, func(k *kaddht.IpfsDHT) error { return k.Provide(ctx, key, true) })
	})
	if err != nil {
		return fmt.Errorf("dht: provide %s: %w", key, err)
	}
	return nil
}

// Unprovide stops re-announcing key. Provider records already stored on
// other peers stay there until they expire (48h). It does not block.
func (d *DHT) Unprovide(key cid.Cid) {
	d.mu.Lock()
	delete(d.provides, key)
	d.mu.Unlock()
}

// wake tells the republisher that its schedule changed.
func (d *DHT) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// retryDelay is how long to wait after a failed (re)publication.
func (d *DHT) retryDelay() time.Duration {
	return max(d.cfg.RepublishInterval/8, time.Second)
}

// nextRun is when to run again an operation that began at started: one
// interval later, so that the schedule does not drift by the time the
// operations take, or sooner after a failure.
func (d *DHT) nextRun(started time.Time, err error) time.Time {
	if err != nil {
		return started.Add(d.retryDelay())
	}
	return started.Add(d.cfg.RepublishInterval)
}

// rescheduleRecord sets when version seq of name is next republished,
// unless it has been replaced or removed meanwhile.
func (d *DHT) rescheduleRecord(name string, seq uint64, started time.Time, err error) {
	next := d.nextRun(started, err)
	d.mu.Lock()
	if r, ok := d.records[name]; ok && r.seq == seq {
		r.next = next
	}
	d.mu.Unlock()
	d.wake()
}

func (d *DHT) rescheduleKey(key cid.Cid, started time.Time, err error) {
	next := d.nextRun(started, err)
	d.mu.Lock()
	if p, ok := d.provides[key]; ok {
		p.next = next
	}
	d.mu.Unlock()
	d.wake()
}

// republishLoop runs until ctx is done: it sleeps until the earliest due
// record or key, then republishes everything due, one at a time, each
// bounded by OpTimeout.
func (d *DHT) republishLoop(ctx context.Context) {
	defer d.wg.Done()
	timer := time.NewTimer(d.cfg.RepublishInterval)
	defer timer.Stop()
	for {
		timer.Reset(d.untilNextDue())
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
			continue
		case <-timer.C:
		}
		d.republishDue(ctx)
	}
}

// untilNextDue returns the wait before the earliest due item, or
// RepublishInterval when there is none.
func (d *DHT) untilNextDue() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	wait := d.cfg.RepublishInterval
	for _, r := range d.records {
		wait = min(wait, r.next.Sub(now))
	}
	for _, p := range d.provides {
		wait = min(wait, p.next.Sub(now))
	}
	return max(wait, 0)
}

type dueRecord struct {
	name  string
	value []byte
	seq   uint64
}

func (d *DHT) republishDue(ctx context.Context) {
	now := d.now()
	var recs []dueRecord
	var keys []cid.Cid
	d.mu.Lock()
	// Until each operation reports, assume it fails: a wake-up meanwhile
	// must not start it twice.
	retry := now.Add(d.retryDelay())
	for name, r := range d.records {
		if !r.next.After(now) {
			recs = append(recs, dueRecord{name, r.value, r.seq})
			r.next = retry
		}
	}
	for k, p := range d.provides {
		if !p.next.After(now) {
			keys = append(keys, k)
			p.next = retry
		}
	}
	d.mu.Unlock()

	for _, r := range recs {
		opCtx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
		err := d.publish(opCtx, r.name, r.value, r.seq)
		cancel()
		if ctx.Err() != nil {
			return
		}
		d.rescheduleRecord(r.name, r.seq, now, err)
		if err != nil {
			d.log.Warn("record republish failed", "name", r.name, "err", err)
		} else {
			d.log.Debug("record republished", "name", r.name, "seq", r.seq)
		}
	}
	for _, k := range keys {
		opCtx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
		err := d.provide(opCtx, k)
		cancel()
		if ctx.Err() != nil {
			return
		}
		d.rescheduleKey(k, now, err)
		if err != nil {
			d.log.Warn("reprovide failed", "key", k.String(), "err", err)
		} else {
			d.log.Debug("key reprovided", "key", k.String())
		}
	}
}
