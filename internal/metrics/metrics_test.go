package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	r.Register(func(w *Writer) {
		w.Sample("a_total", Counter, "A things.", 3, L("x", "1"), L("y", `q"uote`))
		w.Sample("a_total", Counter, "A things.", 4, L("x", "2"))
		w.Sample("b", Gauge, "B level.", 0.5)
	})
	want := "# HELP a_total A things.\n# TYPE a_total counter\n" +
		"a_total{x=\"1\",y=\"q\\\"uote\"} 3\na_total{x=\"2\"} 4\n" +
		"# HELP b B level.\n# TYPE b gauge\nb 0.5\n"
	if got := r.Text(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Body.String() != want || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Errorf("HTTP: %q %q", rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

// TestSamplesGrouped: samples of one metric written by different sources
// (or interleaved by one) come out together.
func TestSamplesGrouped(t *testing.T) {
	r := NewRegistry()
	for _, dest := range []string{"a", "b"} {
		r.Register(func(w *Writer) {
			w.Sample("x_total", Counter, "X.", 1, L("dest", dest))
			w.Sample("y_total", Counter, "Y.", 2, L("dest", dest))
		})
	}
	want := "# HELP x_total X.\n# TYPE x_total counter\nx_total{dest=\"a\"} 1\nx_total{dest=\"b\"} 1\n" +
		"# HELP y_total Y.\n# TYPE y_total counter\ny_total{dest=\"a\"} 2\ny_total{dest=\"b\"} 2\n"
	if got := r.Text(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
