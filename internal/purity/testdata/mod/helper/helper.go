// Package helper looks pure from outside but reaches the network.
package helper

import "net"

// Local reports whether s is a loopback address.
func Local(s string) bool { ip := net.ParseIP(s); return ip != nil && ip.IsLoopback() }
