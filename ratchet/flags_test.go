package ratchet

import "flag"

// update rewrites the frozen vectors of testdata/ instead of checking
// them: go test ./ratchet/ -run Vectors -update.
var update = flag.Bool("update", false, "rewrite the frozen vectors in testdata/")
