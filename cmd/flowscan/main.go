// Command flowscan collects, stores, scans and shows network flows
// (NetFlow v5, v9, IPFIX). See `flowscan help`.
package main

import (
	"os"

	"github.com/flowscan/flowscan/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
