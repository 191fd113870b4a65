// Package lib reads the clock and starts a goroutine.
package lib

import "time"

// Stamp returns the time now, from a goroutine.
func Stamp() time.Time {
	c := make(chan time.Time, 1)
	go func() { c <- time.Now() }()
	return <-c
}
