// Command ncruces is a tiny program linking only the ncruces SQLite driver: see package probe.
package main

import (
	"fmt"
	"os"

	"github.com/exopeer/exopeer/store/enginebench/ncruces"
	"github.com/exopeer/exopeer/store/enginebench/probe"
)

func main() {
	if err := probe.Main(ncruces.Name, ncruces.Open, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
