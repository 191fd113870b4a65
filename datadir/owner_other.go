//go:build !unix

package datadir

import "io/fs"

// ownerOther reports no owner: outside unix, the data dir's owner is left
// to the system's ACLs.
func ownerOther(fs.FileInfo) (uid int, other bool) { return 0, false }
