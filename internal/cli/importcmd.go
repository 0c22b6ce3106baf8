package cli

import (
	"fmt"
	"io"

	"github.com/flowscan/flowscan/internal/report/cuflow"
	"github.com/flowscan/flowscan/internal/report/jkflow"
)

// importers convert other tools' configuration files to flowscan's YAML.
var importers = map[string]func(path string, stdout, stderr io.Writer) error{
	"jkflow": importJKFlow,
	"cuflow": importCUFlow,
}

func runImport(args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintf(stderr, "Usage: flowscan import cuflow CUFlow.cf\n       flowscan import jkflow JKFlow.xml\n\n"+
			"Converts an existing CUFlow.cf or JKFlow.xml to the modules: section of flowscan's YAML\n"+
			"configuration and prints it. Errors name the file and line.\n")
	}
	for _, a := range args {
		if a == "--help" || a == "-help" || a == "-h" {
			usage()
			return nil
		}
	}
	if len(args) != 2 {
		usage()
		return errUsage
	}
	imp, ok := importers[args[0]]
	if !ok {
		usage()
		return fmt.Errorf("unknown format %q", args[0])
	}
	return imp(args[1], stdout, stderr)
}

func importJKFlow(path string, stdout, stderr io.Writer) error {
	cfg, err := jkflow.ParseXML(path)
	if err != nil {
		return err
	}
	for _, n := range cfg.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	body, err := cfg.YAML()
	if err != nil {
		return err
	}
	return writeModuleYAML(stdout, "jkflow", path, body)
}

// writeModuleYAML prints body as the section modules.<name> of a
// configuration, with report_classes naming it.
func writeModuleYAML(w io.Writer, name, source string, body []byte) error {
	fmt.Fprintf(w, "# converted from %s by flowscan import %s\nscan:\n  report_classes: [%s]\nmodules:\n  %s:\n", source, name, name, name)
	for _, line := range splitLines(body) {
		if line == "" {
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "    %s\n", line)
	}
	return nil
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, string(b[start:]))
	}
	return out
}

func importCUFlow(path string, stdout, stderr io.Writer) error {
	cfg, err := cuflow.ParseCF(path)
	if err != nil {
		return err
	}
	body, err := cfg.YAML()
	if err != nil {
		return err
	}
	return writeModuleYAML(stdout, "cuflow", path, body)
}
