package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/flowfile/flowtools"
)

func runDump(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dump", "[flags] FILE|DIR...",
		"Prints the flows of flow files (the flowdumper / flow-print successor): flowscan's own files\n"+
			"and flow-tools (flow-capture ft-v05.*) files. A directory means every completed file under it,\n"+
			"in time order. The text format shows each file's metadata (interval, counts, exporters, lost\n"+
			"flows) above its flows; --meta prints only metadata. A file that cannot be read is reported\n"+
			"on stderr and skipped; the exit status is then 1.", stderr)
	format := fs.String("format", "text", "output `FORMAT`: text, csv or json (one object per line)")
	metaOnly := fs.Bool("meta", false, "print only each file's metadata")
	limit := fs.Uint64("limit", 0, "stop after `N` flows (0: all)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch *format {
	case "text", "csv", "json":
	default:
		return fmt.Errorf("--format %q: want text, csv or json", *format)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	defer w.Flush()
	// A file or directory that cannot be read is reported and skipped;
	// the others are still dumped and the exit status is 1 at the end.
	failed := 0
	warn := func(p string, err error) {
		failed++
		w.Flush()
		if !strings.HasPrefix(err.Error(), p+":") {
			err = fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(stderr, "flowscan dump: warning: %v\n", err)
	}
	paths := flowFiles(fs.Args(), warn)
	d := dumper{w: w, format: *format, metaOnly: *metaOnly, limit: *limit}
	if *format == "csv" && !*metaOnly {
		w.WriteString(strings.Join(flow.Fields, ",") + "\n")
	}
	for _, p := range paths {
		if err := d.file(p); err != nil {
			if errors.Is(err, errLimit) {
				break
			}
			warn(p, err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d file(s) or directories could not be read (see the warnings above)", failed)
	}
	return nil
}

var errLimit = errors.New("limit reached")

type dumper struct {
	w        *bufio.Writer
	format   string
	metaOnly bool
	limit    uint64
	n        uint64
	buf      []byte
	recs     []flow.Record
}

// recordReader is what dump needs of a flowscan or a flow-tools file.
type recordReader interface {
	Next(dst []flow.Record) ([]flow.Record, error)
	Close() error
}

// openFlowFile opens path as a flowscan flow file or a flow-tools (flow-capture)
// file: by its name first (ft-v05.* is flow-tools), then by its content.
func openFlowFile(path string) (recordReader, *flowfile.Meta, error) {
	openFT := func() (recordReader, *flowfile.Meta, error) {
		r, err := flowtools.Open(path)
		if err != nil {
			return nil, nil, err
		}
		return r, flowToolsMeta(path, r.Header()), nil
	}
	if _, ok := flowtools.ParseName(filepath.Base(path)); ok {
		return openFT()
	}
	r, err := flowfile.Open(path)
	if err == nil {
		return r, r.Meta(), nil
	}
	if fr, m, ferr := openFT(); ferr == nil {
		return fr, m, nil
	} else if !errors.Is(ferr, flowtools.ErrNotFlowTools) {
		return nil, nil, ferr
	}
	return nil, nil, err
}

// flowToolsMeta is the metadata of a flow-tools file as far as its header
// gives it; dump counts packets, bytes and the flow times itself. Source
// "flow-tools" marks it.
func flowToolsMeta(path string, h *flowtools.Header) *flowfile.Meta {
	start, ok := flowtools.ParseName(filepath.Base(path))
	if !ok {
		start = h.CaptureStart
	}
	m := &flowfile.Meta{Start: start, End: h.IntervalEnd(start), Hostname: h.Hostname, Complete: h.Done()}
	if h.Exporter.IsValid() || h.LostFlows > 0 || h.SequenceResets > 0 || h.MisorderedFlows > 0 {
		m.Exporters = []flowfile.ExporterMeta{{Addr: h.Exporter, Format: fmt.Sprintf("flow-tools v%d", h.ExportVersion),
			ExporterStats: flowfile.ExporterStats{Flows: uint64(h.Flows), LostFlows: uint64(h.LostFlows),
				SequenceResets: uint64(h.SequenceResets), Misordered: uint64(h.MisorderedFlows)}}}
	}
	return m
}

// countFlows fills the totals of a flow-tools file's metadata by reading
// its records (its header holds only the flow count).
func countFlows(path string, m *flowfile.Meta) error {
	r, err := flowtools.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	var recs []flow.Record
	for {
		recs, err = r.Next(recs[:0])
		for i := range recs {
			rec := &recs[i]
			m.Flows++
			m.Packets += rec.Packets
			m.Bytes += rec.Bytes
			if st := rec.StartTime(); m.FirstFlow.IsZero() || st.Before(m.FirstFlow) {
				m.FirstFlow = st
			}
			if et := time.UnixMilli(rec.End); et.After(m.LastFlow) {
				m.LastFlow = et
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (d *dumper) file(path string) error {
	r, m, err := openFlowFile(path)
	if err != nil {
		return err
	}
	defer r.Close()
	_, flowTools := r.(*flowtools.Reader)
	if flowTools && (d.metaOnly || d.format == "text") {
		if err := countFlows(path, m); err != nil {
			return err
		}
	}
	if d.metaOnly {
		return d.meta(path, m, flowTools)
	}
	if d.format == "text" {
		d.textMeta(path, m, flowTools)
		d.w.WriteString(textHeader)
	}
	for {
		d.recs, err = r.Next(d.recs[:0])
		for i := range d.recs {
			if d.limit > 0 && d.n >= d.limit {
				return errLimit
			}
			d.n++
			d.record(&d.recs[i])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (d *dumper) record(r *flow.Record) {
	switch d.format {
	case "json":
		d.buf = flow.AppendJSON(d.buf[:0], r)
	case "csv":
		d.buf = flow.AppendCSV(d.buf[:0], r)
	default:
		d.buf = appendText(d.buf[:0], r)
	}
	d.buf = append(d.buf, '\n')
	d.w.Write(d.buf)
}

// metaJSON is the JSON form of a file's metadata.
type metaJSON struct {
	File string `json:"file"`
	// Source is "flow-tools" for a flow-capture file (absent for
	// flowscan's own files).
	Source    string    `json:"source,omitempty"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Complete  bool      `json:"complete"`
	Recovered bool      `json:"recovered"`
	Hostname  string    `json:"hostname,omitempty"`
	Flows     uint64    `json:"flows"`
	Packets   uint64    `json:"packets"`
	Bytes     uint64    `json:"bytes"`
	LostFlows uint64    `json:"lost_flows"`
	// DroppedFlows were received but lost by the collector itself (its
	// disk writer fell behind or failed).
	DroppedFlows uint64         `json:"dropped_flows"`
	FirstFlow    *time.Time     `json:"first_flow,omitempty"`
	LastFlow     *time.Time     `json:"last_flow,omitempty"`
	Exporters    []exporterJSON `json:"exporters"`
}

type exporterJSON struct {
	Exporter       string `json:"exporter"`
	Domain         uint32 `json:"domain"`
	Format         string `json:"format"`
	Datagrams      uint64 `json:"datagrams"`
	Flows          uint64 `json:"flows"`
	LostFlows      uint64 `json:"lost_flows"`
	LostDatagrams  uint64 `json:"lost_datagrams"`
	SequenceResets uint64 `json:"sequence_resets"`
	Misordered     uint64 `json:"misordered"`
	SamplingRate   uint32 `json:"sampling_rate"`
}

func toMetaJSON(path string, m *flowfile.Meta) metaJSON {
	out := metaJSON{File: path, Start: m.Start, End: m.End, Complete: m.Complete, Recovered: m.Recovered,
		Hostname: m.Hostname, Flows: m.Flows, Packets: m.Packets, Bytes: m.Bytes, LostFlows: m.LostFlows(),
		DroppedFlows: m.DroppedFlows, Exporters: []exporterJSON{}}
	if m.Flows > 0 {
		first, last := m.FirstFlow.UTC(), m.LastFlow.UTC()
		out.FirstFlow, out.LastFlow = &first, &last
	}
	for _, e := range m.Exporters {
		out.Exporters = append(out.Exporters, exporterJSON{Exporter: e.Addr.String(), Domain: e.Domain, Format: e.Format,
			Datagrams: e.Datagrams, Flows: e.Flows, LostFlows: e.LostFlows, LostDatagrams: e.LostDatagrams,
			SequenceResets: e.SequenceResets, Misordered: e.Misordered, SamplingRate: e.SamplingRate})
	}
	return out
}

func (d *dumper) meta(path string, m *flowfile.Meta, flowTools bool) error {
	switch d.format {
	case "json":
		mj := toMetaJSON(path, m)
		if flowTools {
			mj.Source = "flow-tools"
		}
		b, err := json.Marshal(mj)
		if err != nil {
			return err
		}
		d.w.Write(append(b, '\n'))
	case "csv":
		if d.n == 0 {
			d.w.WriteString("file,start,end,complete,flows,packets,bytes,lost_flows,dropped_flows,exporters\n")
		}
		d.n++
		fmt.Fprintf(d.w, "%s,%s,%s,%t,%d,%d,%d,%d,%d,%d\n", path, m.Start.Format(time.RFC3339), m.End.Format(time.RFC3339),
			m.Complete, m.Flows, m.Packets, m.Bytes, m.LostFlows(), m.DroppedFlows, len(m.Exporters))
	default:
		d.textMeta(path, m, flowTools)
	}
	return nil
}

func (d *dumper) textMeta(path string, m *flowfile.Meta, flowTools bool) {
	state := "complete"
	if !m.Complete {
		state = "in progress"
	}
	if flowTools {
		state = "flow-tools, " + state
	}
	if m.Recovered {
		state += ", recovered after a crash"
	}
	fmt.Fprintf(d.w, "# file %s (%s)\n# interval %s - %s\n# flows %d  packets %d  bytes %d  lost flows %d\n",
		path, state, m.Start.Format(time.RFC3339), m.End.Format(time.RFC3339), m.Flows, m.Packets, m.Bytes, m.LostFlows())
	if m.DroppedFlows > 0 {
		fmt.Fprintf(d.w, "# WARNING: %d flows were received but dropped by the collector (disk writer behind or failing)\n", m.DroppedFlows)
	}
	for _, e := range m.Exporters {
		fmt.Fprintf(d.w, "# exporter %s domain %d %s: datagrams %d flows %d lost flows %d sampling 1:%d\n",
			e.Addr, e.Domain, e.Format, e.Datagrams, e.Flows, e.LostFlows, max(e.SamplingRate, 1))
	}
}

const textHeader = "start                    duration proto src                                         dst                                           packets        bytes flags   in  out exporter\n"

func appendText(b []byte, r *flow.Record) []byte {
	b = r.StartTime().AppendFormat(b, "2006-01-02 15:04:05.000")
	b = pad(b, 25)
	b = padLeft(b, strconv.AppendFloat(nil, r.Duration().Seconds(), 'f', 3, 64), 8)
	b = append(b, ' ')
	start := len(b)
	b = append(b, protoName(r.Proto)...)
	b = padFrom(b, start, 6)
	start = len(b)
	b = appendHostPort(b, r, true)
	b = padFrom(b, start, 44)
	start = len(b)
	b = appendHostPort(b, r, false)
	b = padFrom(b, start, 44)
	b = padLeft(b, strconv.AppendUint(nil, r.Packets, 10), 9)
	b = append(b, ' ')
	b = padLeft(b, strconv.AppendUint(nil, r.Bytes, 10), 12)
	b = append(b, ' ')
	b = append(b, tcpFlags(r.TCPFlags)...)
	b = append(b, ' ')
	b = padLeft(b, strconv.AppendUint(nil, uint64(r.InIf), 10), 4)
	b = append(b, ' ')
	b = padLeft(b, strconv.AppendUint(nil, uint64(r.OutIf), 10), 4)
	b = append(b, ' ')
	return flow.AppendAddr(b, r.Exporter)
}

func appendHostPort(b []byte, r *flow.Record, src bool) []byte {
	a, p := r.DstAddr, r.DstPort
	if src {
		a, p = r.SrcAddr, r.SrcPort
	}
	a = a.Unmap()
	if a.Is6() {
		b = append(b, '[')
		b = flow.AppendAddr(b, a)
		b = append(b, ']')
	} else {
		b = flow.AppendAddr(b, a)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(p), 10)
}

func pad(b []byte, n int) []byte {
	for len(b) < n {
		b = append(b, ' ')
	}
	return b
}

func padFrom(b []byte, start, width int) []byte {
	for len(b)-start < width {
		b = append(b, ' ')
	}
	return append(b, ' ')
}

func padLeft(b, v []byte, width int) []byte {
	for i := len(v); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, v...)
}

// protoName returns a short protocol name or the number.
func protoName(p uint8) string {
	switch p {
	case 1:
		return "ICMP"
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 47:
		return "GRE"
	case 50:
		return "ESP"
	case 58:
		return "ICMP6"
	case 132:
		return "SCTP"
	}
	return strconv.Itoa(int(p))
}

// tcpFlags renders flags as six letters UAPRSF with dots for unset ones.
func tcpFlags(f uint8) string {
	const names = "UAPRSF"
	out := []byte("......")
	for i := 0; i < 6; i++ {
		if f&(1<<(5-i)) != 0 {
			out[i] = names[i]
		}
	}
	return string(out)
}

// flowFiles expands arguments naming flow files or archive directories
// into flowscan and flow-tools files, each directory's oldest first. An
// argument that cannot be read is handed to warn and skipped.
func flowFiles(args []string, warn func(path string, err error)) []string {
	var paths []string
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			warn(arg, err)
			continue
		}
		if !st.IsDir() {
			paths = append(paths, arg)
			continue
		}
		entries, err := flowfile.List(arg)
		if err != nil {
			warn(arg, err)
			continue
		}
		ft, err := flowtools.List(arg)
		if err != nil {
			warn(arg, err)
			continue
		}
		entries = append(entries, ft...)
		slices.SortStableFunc(entries, func(a, b flowfile.Entry) int {
			if c := a.Start.Compare(b.Start); c != 0 {
				return c
			}
			return strings.Compare(a.Path, b.Path)
		})
		for _, e := range entries {
			paths = append(paths, e.Path)
		}
	}
	return paths
}
