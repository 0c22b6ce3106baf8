package cli

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/gen"
)

// backfillExporters are the simulated routers of the demo history.
var backfillExporters = []struct {
	addr   netip.Addr
	format decode.Format
}{
	{netip.MustParseAddr("192.0.2.1"), decode.FormatNetFlow5},
	{netip.MustParseAddr("192.0.2.2"), decode.FormatNetFlow9},
	{netip.MustParseAddr("192.0.2.3"), decode.FormatIPFIX},
}

// dailyShape is the share of peak traffic at time t: low at night, high
// in the afternoon, lower at weekends.
func dailyShape(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	v := 0.25 + 0.75*(1+math.Sin(2*math.Pi*(h-9)/24))/2
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		v *= 0.6
	}
	return v
}

// backfill writes generated flow files for [from, to) into dir, one per
// interval, with peak flows per interval and a daily traffic shape, as if
// a collector had been running. It returns the number of flows written.
func backfill(dir string, from, to time.Time, interval time.Duration, peak int, loc *time.Location, progress io.Writer) (uint64, error) {
	var clock atomic.Int64
	clock.Store(from.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	w, err := flowfile.NewWriter(flowfile.Config{Dir: dir, Interval: interval, Location: loc, Now: now, FlushInterval: time.Hour})
	if err != nil {
		return 0, err
	}
	mix := gen.NewMix(42, gen.MixOptions{IPv6Share: 0.2, Interval: interval})
	batch := make([]flow.Record, 0, 1024)
	var total uint64
	steps := int(to.Sub(from) / interval)
	for i := 0; i < steps; i++ {
		t := from.Add(time.Duration(i) * interval)
		end := t.Add(interval)
		clock.Store(t.Add(interval / 2).UnixNano())
		n := int(float64(peak) * dailyShape(t))
		for _, exp := range backfillExporters {
			share := n / len(backfillExporters)
			for done := 0; done < share; {
				batch = batch[:0]
				for ; len(batch) < cap(batch) && done < share; done++ {
					var r flow.Record
					mix.Next(&r, end)
					r.Exporter, r.Domain = exp.addr, 1
					if exp.format == decode.FormatNetFlow5 && r.SrcAddr.Is6() {
						continue // v5 cannot carry IPv6
					}
					batch = append(batch, r)
				}
				if err := w.Write(batch); err != nil {
					return total, err
				}
				total += uint64(len(batch))
			}
			w.Account(flowfile.ExporterKey{Addr: exp.addr, Domain: 1, Format: uint8(exp.format)},
				flowfile.ExporterStats{Datagrams: uint64(share/25 + 1), Flows: uint64(share), SamplingRate: 1})
		}
		if i == steps-1 {
			break // Close completes the last file at `to`
		}
		clock.Store(end.UnixNano())
		if err := w.Tick(); err != nil {
			return total, err
		}
		if progress != nil && (i+1)%(steps/7+1) == 0 {
			fmt.Fprintf(progress, "  backfilled %d of %d intervals (%s)\n", i+1, steps, end.Format("2006-01-02 15:04"))
		}
	}
	clock.Store(to.UnixNano())
	return total, w.Close()
}
