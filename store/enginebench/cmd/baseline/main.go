// Command baseline is the tiny program of cmd/ncruces and cmd/modernc without a driver:
// the difference in binary size and idle memory is what each driver adds.
package main

import (
	"fmt"
	"os"

	"github.com/exopeer/exopeer/store/enginebench/probe"
)

func main() {
	if err := probe.Main("baseline", nil, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
