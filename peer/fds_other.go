//go:build !unix

package peer

// fdBudget is the file descriptors libp2p may use: unknown here, so
// libp2p's base limit applies.
func fdBudget() int { return 0 }
