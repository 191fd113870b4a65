// Command modernc is a tiny program linking only the modernc SQLite driver: see package probe.
package main

import (
	"fmt"
	"os"

	"github.com/exopeer/exopeer/store/enginebench/modernc"
	"github.com/exopeer/exopeer/store/enginebench/probe"
)

func main() {
	if err := probe.Main(modernc.Name, modernc.Open, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
