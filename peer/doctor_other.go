//go:build !linux && !darwin

package peer

import "github.com/exopeer/exopeer/doctor"

// diskOf reports no disk where syscall.Statfs does not exist: the doctor
// checks no free space there.
func diskOf(string) doctor.Disk { return doctor.Disk{} }
