package service

import (
	"math"
	"time"
)

// Reasons a contact's message is slowed or refused (QuotaStats counts
// each).
const (
	// reasonRate: the contact's messages or bytes per second are over
	// its rate by more than Config.MaxSlow of waiting.
	reasonRate = "rate"
	// reasonContactDay: the contact's bytes recorded today would pass
	// Config.MaxInBytesPerContactPerDay.
	reasonContactDay = "contact-day"
	// reasonNodeDay: the bytes recorded today from every contact would
	// pass Config.MaxInBytesPerDay.
	reasonNodeDay = "node-day"
	// reasonStore: the quota's record could not be written, so the bytes
	// cannot be counted durably.
	reasonStore = "store"
)

// bucket is a token bucket: tokens, at most a burst, refilled at a rate
// per second since at.
type bucket struct {
	tokens float64
	at     time.Time
}

// level returns b's tokens at now, refilled at rate up to burst (a new
// bucket is full), without changing b.
func (b *bucket) level(now time.Time, rate, burst float64) float64 {
	if b.at.IsZero() {
		return burst
	}
	d := now.Sub(b.at).Seconds()
	if d < 0 {
		d = 0
	}
	return min(burst, b.tokens+d*rate)
}

// wait is how long a cost of n must wait at rate once the bucket holds
// t tokens: 0 while t covers it, else until the debt is refilled; a
// wait past what a Duration holds (a rate so small) is the longest
// Duration, not an overflow to a negative one (which would admit it).
func wait(t, n, rate float64) time.Duration {
	if t >= n {
		return 0
	}
	d := (n - t) / rate * float64(time.Second)
	if !(d < math.MaxInt64) { // also NaN
		return math.MaxInt64
	}
	return time.Duration(d)
}

// daily counts the bytes recorded on one day (Unix days, UTC): used
// counts them in memory; leased is the count on disk, never below used,
// so that a restart resumes from a count no lower than the true one.
type daily struct {
	day    int64
	used   int64
	leased int64
	loaded bool // day and leased read from the datastore
}

// at returns d's count for day: 0 on a later day than d's; the day
// before d's counts as d's (a clock stepped back across midnight does
// not restart the count), one earlier still from 0 (d's day was of a
// clock that was wrong).
func (d *daily) at(day int64) int64 {
	if d.newDay(day) {
		return 0
	}
	return d.used
}

// newDay reports whether a count on day starts from 0, not from d's.
func (d *daily) newDay(day int64) bool { return day > d.day || day < d.day-1 }

// quotaEntry is one contact cell's quota state.
type quotaEntry struct {
	msgs, bytes bucket
	day         daily
	seen        time.Time // last admission looked at (for eviction)
}

// quotaLimits is the part of Config the quotas use.
type quotaLimits struct {
	rate, burst           float64 // messages per second, messages
	bytesRate, bytesBurst float64 // bytes per second, bytes
	maxSlow               time.Duration
	perContactDay         int64
	perNodeDay            int64
}

// verdict is what the quotas decide for a message in: delay its answer
// (slowed, when not 0), or refuse it for reason (not empty).
type verdict struct {
	delay  time.Duration
	reason string
}

// judge decides on a message of n bytes from the contact whose entry is
// e, at now (the rate's clock) on day (the budgets'), given the node's
// count node; it changes nothing. A message over a rate is slowed by the
// time its bucket needs to refill its cost, and refused when that is
// more than maxSlow; one that would pass a daily budget is refused.
func (l quotaLimits) judge(e *quotaEntry, node *daily, n int64, now time.Time, day int64) verdict {
	dm := wait(e.msgs.level(now, l.rate, l.burst), 1, l.rate)
	db := wait(e.bytes.level(now, l.bytesRate, l.bytesBurst), float64(n), l.bytesRate)
	d := max(dm, db)
	switch {
	case d > l.maxSlow:
		return verdict{reason: reasonRate}
	case e.day.at(day)+n > l.perContactDay:
		return verdict{reason: reasonContactDay}
	case node.at(day)+n > l.perNodeDay:
		return verdict{reason: reasonNodeDay}
	}
	return verdict{delay: d}
}

// take charges a message of n bytes admitted by judge to e and node:
// its cost is taken from the buckets (which may go below zero by at most
// maxSlow of refill: the delay the message was given) and its bytes
// counted for day.
func (l quotaLimits) take(e *quotaEntry, node *daily, n int64, now time.Time, day int64) {
	e.msgs.tokens = e.msgs.level(now, l.rate, l.burst) - 1
	e.bytes.tokens = e.bytes.level(now, l.bytesRate, l.bytesBurst) - float64(n)
	if now.After(e.msgs.at) { // never back: level counted no refill before at
		e.msgs.at, e.bytes.at = now, now
	}
	for _, d := range []*daily{&e.day, node} {
		if d.newDay(day) {
			d.day, d.used, d.leased = day, 0, 0
		}
		d.used += n
	}
}

// unixDay is t's day: days since the Unix epoch, UTC.
func unixDay(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s+1)/86400 - 1
	}
	return s / 86400
}
