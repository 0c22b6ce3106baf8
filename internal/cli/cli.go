// Package cli implements flowscan's subcommands: flag parsing, building the
// parts from the other packages and running them. cmd/flowscan only calls
// Main.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/flowscan/flowscan/internal/config"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
	order   int
}

// registered holds the subcommands; each command's file adds itself with
// register from an init function, so adding a command touches no other
// file.
var registered []command

// register adds a subcommand. order sorts the help listing (lower first).
func register(order int, name, summary string, run func(args []string, stdout, stderr io.Writer) error) {
	registered = append(registered, command{name: name, summary: summary, run: run, order: order})
}

func commands() []command {
	out := append([]command(nil), registered...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

func init() {
	register(10, "run", "collect and scan in one process (collector + report modules)", runRun)
	register(20, "collect", "receive NetFlow v5/v9/IPFIX and sFlow over UDP and write rotated flow files", runCollect)
	register(30, "scan", "run report modules (CUFlow, JKFlow, CampusIO, SubNetIO) over flow files into RRD files", runScan)
	register(50, "dump", "print the flows and metadata of flow files (text, CSV, JSON)", runDump)
	register(70, "config", "check a configuration file (flowscan config check FILE)", runConfig)
	register(71, "import", "convert a CUFlow.cf or JKFlow.xml to flowscan's YAML configuration", runImport)
	register(80, "gen", "send synthetic NetFlow v5/v9/IPFIX traffic to a collector", runGen)
	register(90, "demo", "run everything on loopback with generated traffic and show the result", runDemo)
	register(99, "version", "print the version", func([]string, io.Writer, io.Writer) error { return nil })
}

// errUsage marks errors for which the usage text was already printed.
var errUsage = errors.New("usage")

// Main runs flowscan with args (without the program name) and returns the
// process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			usage(stdout)
			return 0
		}
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "flowscan", Version)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			default:
				fmt.Fprintf(stderr, "flowscan %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "flowscan: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "flowscan %s: network flow collector and reporter\n\nUsage: flowscan COMMAND [flags] [args]\n\nCommands:\n", Version)
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'flowscan COMMAND --help' for a command's flags.\n")
}

// newFlagSet returns a FlagSet whose usage names the command and shows
// synopsis and description.
func newFlagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: flowscan %s %s\n\n%s\n\nFlags:\n", name, synopsis, description)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, mapping flag errors to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s = append(*s, part)
		}
	}
	return nil
}

// prefixList is a repeatable flag of addresses or prefixes.
type prefixList []netip.Prefix

func (p *prefixList) String() string {
	var parts []string
	for _, x := range *p {
		parts = append(parts, x.String())
	}
	return strings.Join(parts, ",")
}

func (p *prefixList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		pr, err := config.ParsePrefix(part)
		if err != nil {
			return err
		}
		*p = append(*p, pr)
	}
	return nil
}

// samplingOverrides is the repeatable --sampling EXPORTER=RATE flag.
type samplingOverrides map[netip.Addr]uint32

func (s samplingOverrides) String() string {
	var parts []string
	for a, r := range s {
		parts = append(parts, a.String()+"="+strconv.Itoa(int(r)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (s samplingOverrides) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		addr, rate, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("%q: want EXPORTER=RATE", part)
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return fmt.Errorf("%q: bad exporter address", part)
		}
		r, err := strconv.ParseUint(rate, 10, 32)
		if err != nil || r == 0 {
			return fmt.Errorf("%q: rate must be a positive integer", part)
		}
		s[a.Unmap()] = uint32(r)
	}
	return nil
}

// lookup returns the override for exporter a.
func (s samplingOverrides) lookup(a netip.Addr) (uint32, bool) {
	r, ok := s[a.Unmap()]
	return r, ok
}
