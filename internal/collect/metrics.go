package collect

import (
	"sort"
	"sync/atomic"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/metrics"
)

// writeMetrics is the collector's metrics.Source.
func (c *Collector) writeMetrics(w *metrics.Writer) {
	type row struct {
		k exporterKey
		c *exporterCounters
	}
	c.expMu.RLock()
	rows := make([]row, 0, len(c.exporters))
	for k, v := range c.exporters {
		rows = append(rows, row{k, v})
	}
	c.expMu.RUnlock()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].k.addr != rows[j].k.addr {
			return rows[i].k.addr.Less(rows[j].k.addr)
		}
		return rows[i].k.format < rows[j].k.format
	})
	if c.overflow.datagrams.Load() > 0 {
		rows = append(rows, row{exporterKey{}, &c.overflow})
	}
	for _, r := range rows {
		exp := "other"
		if r.k.addr.IsValid() {
			exp = r.k.addr.String()
		}
		l := []metrics.Label{metrics.L("exporter", exp), metrics.L("format", r.k.format.String())}
		w.Sample("flowscan_datagrams_total", metrics.Counter, "Export datagrams decoded, by exporter and format.", float64(r.c.datagrams.Load()), l...)
		w.Sample("flowscan_flows_total", metrics.Counter, "Flow records decoded, by exporter and format.", float64(r.c.flows.Load()), l...)
		w.Sample("flowscan_lost_flows_total", metrics.Counter, "Flows lost between exporter and collector according to sequence numbers (estimated for NetFlow v9 and sFlow).", float64(r.c.lostFlows.Load()), l...)
		w.Sample("flowscan_lost_datagrams_total", metrics.Counter, "Datagrams lost according to datagram sequence numbers (NetFlow v9, sFlow).", float64(r.c.lostDatagrams.Load()), l...)
		w.Sample("flowscan_sequence_resets_total", metrics.Counter, "Sequence number jumps treated as an exporter restart.", float64(r.c.resets.Load()), l...)
		w.Sample("flowscan_misordered_datagrams_total", metrics.Counter, "Datagrams that arrived after a later one.", float64(r.c.misordered.Load()), l...)
		w.Sample("flowscan_skewed_flows_total", metrics.Counter, "Flows whose end time is more than 10 minutes after their arrival or more than 2 hours before it: the exporter's clock or uptime is probably wrong (the flows are stored as sent).", float64(r.c.skewed.Load()), l...)
		w.Sample("flowscan_exporter_last_seen_seconds", metrics.Gauge, "Unix time of the last datagram from the exporter.", float64(r.c.lastSeen.Load()), l...)
	}
	type er struct {
		k errKey
		n uint64
	}
	var errs []er
	c.decodeErrors.Range(func(k, v any) bool {
		errs = append(errs, er{k.(errKey), v.(interface{ Load() uint64 }).Load()})
		return true
	})
	sort.Slice(errs, func(i, j int) bool {
		if errs[i].k.format != errs[j].k.format {
			return errs[i].k.format < errs[j].k.format
		}
		return errs[i].k.reason < errs[j].k.reason
	})
	for _, e := range errs {
		w.Sample("flowscan_decode_errors_total", metrics.Counter, "Datagrams dropped because they could not be decoded, by format and reason.", float64(e.n),
			metrics.L("format", e.k.format.String()), metrics.L("reason", string(e.k.reason)))
	}
	if len(errs) == 0 {
		w.Sample("flowscan_decode_errors_total", metrics.Counter, "Datagrams dropped because they could not be decoded, by format and reason.", 0,
			metrics.L("format", "unknown"), metrics.L("reason", "none"))
	}
	for _, f := range decode.Registered() {
		var n uint64
		if v, ok := c.skippedRecords.Load(f.Format); ok {
			n = v.(*atomic.Uint64).Load()
		}
		w.Sample("flowscan_skipped_records_total", metrics.Counter, "Data records that became no flow: NetFlow v9 and IPFIX data of a template not known yet, sFlow flow samples of packets without an IP header.",
			float64(n), metrics.L("format", f.Format.String()))
	}
	w.Sample("flowscan_denied_datagrams_total", metrics.Counter, "Datagrams from exporters outside the allow-list.", float64(c.denied.Load()))
	w.Sample("flowscan_truncated_datagrams_total", metrics.Counter, "Datagrams larger than the receive slot, dropped.", float64(c.truncated.Load()))
	// SO_REUSEPORT sockets share an address: one series per address.
	drops := map[string]uint64{}
	var addrs []string
	for _, s := range c.sockets {
		a := s.Addr()
		if _, ok := drops[a]; !ok {
			addrs = append(addrs, a)
		}
		drops[a] += uint64(s.Drops())
	}
	for _, a := range addrs {
		w.Sample("flowscan_socket_drops_total", metrics.Counter, "Datagrams the kernel dropped for lack of receive buffer space, summed over the address's sockets.", float64(drops[a]), metrics.L("socket", a))
	}
	w.Sample("flowscan_receive_errors_total", metrics.Counter, "Failed receive calls (retried).", float64(c.receiveErrors.Load()))
	for _, f := range decode.Registered() {
		if st, ok := c.mux.Decoder(f.Format).(decode.Stateful); ok {
			w.Sample("flowscan_templates", metrics.Gauge, "Templates currently known, by format.", float64(st.TemplateCount()), metrics.L("format", f.Format.String()))
		}
	}
	w.Sample("flowscan_state_save_errors_total", metrics.Counter, "Failures to save decoder state.", float64(c.stateErrors.Load()))
	ws := c.writer.Stats()
	w.Sample("flowscan_file_bytes_written_total", metrics.Counter, "Bytes written to flow files.", float64(ws.BytesWritten))
	w.Sample("flowscan_files_completed_total", metrics.Counter, "Flow files completed and renamed.", float64(ws.FilesCompleted))
	w.Sample("flowscan_file_dropped_flows_total", metrics.Counter, "Flows lost because the disk writer fell behind or failed.", float64(ws.DroppedRecords))
	w.Sample("flowscan_file_queued_blocks", metrics.Gauge, "Blocks waiting for the background writer.", float64(ws.QueuedBlocks))
	w.Sample("flowscan_file_write_errors_total", metrics.Counter, "Flow file write errors.", float64(ws.Errors))
	w.Sample("flowscan_rotation_latency_seconds", metrics.Gauge, "Time from the end of an interval to its file being complete, for the last rotation.", ws.LastRotationLatency.Seconds())
}
