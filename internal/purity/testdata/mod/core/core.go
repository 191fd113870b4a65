// Package core imports nothing impure itself: its helper does.
package core

import "example.com/mod/helper"

// Local is helper's.
func Local(s string) bool { return helper.Local(s) }
