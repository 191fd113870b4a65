// Package web reaches net/http through the standard library only.
package web

import "net/http/httptest"

// Recorder returns a response recorder.
func Recorder() any { return httptest.NewRecorder() }
