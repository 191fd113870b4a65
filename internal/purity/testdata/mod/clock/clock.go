// Package clock reads the clock through a package of its module.
package clock

import "example.com/mod/lib"

// Stamp is lib's.
var Stamp = lib.Stamp
