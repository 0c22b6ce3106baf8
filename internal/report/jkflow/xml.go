package jkflow

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseXML reads an existing JKFlow.xml and converts it to a Config.
// Errors name the file and line: unknown elements and attributes, bad
// prefixes, ports, protocols and numbers, duplicate names and labels, and
// references to undefined sites, sets and router groups. Features this
// module does not implement (ftp tracking, aggregate scoreboard reports,
// tuples, scoreboardother, the DBM database) are dropped and listed in
// Config.Notes.
func ParseXML(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseXML(path, f)
}

type xref struct {
	kind, name, what string
	line             int
}

type xmlParser struct {
	path string
	d    *xml.Decoder
	cfg  *Config
	refs []xref
	// dirLines maps a direction path to its line.
	dirLines map[string]int
	// lines maps "direction <path>", "all" and "define set <name>" to
	// their lines, for errors found when compiling.
	lines map[string]int
}

func parseXML(path string, r io.Reader) (*Config, error) {
	p := &xmlParser{path: path, d: xml.NewDecoder(r), cfg: &Config{}, dirLines: map[string]int{}, lines: map[string]int{}}
	p.d.Strict = true
	p.d.CharsetReader = charsetReader
	for {
		line, _ := p.d.InputPos()
		tok, err := p.d.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: no root element", path)
		}
		if err != nil {
			return nil, p.syntax(err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if err := p.root(se, line); err != nil {
				return nil, err
			}
			break
		}
	}
	if err := p.checkRefs(); err != nil {
		return nil, err
	}
	if _, err := compile(p.cfg); err != nil {
		// Errors that only show once sets are merged name the direction,
		// "all" or the define set: give its line.
		msg := err.Error()
		for what, line := range p.lines {
			if strings.HasPrefix(msg, what+":") || strings.HasPrefix(msg, what+" ") {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p.cfg, nil
}

func (p *xmlParser) syntax(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s:%d: %s", p.path, se.Line, se.Msg)
	}
	line, _ := p.d.InputPos()
	return fmt.Errorf("%s:%d: %v", p.path, line, err)
}

func (p *xmlParser) errf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.path, line, fmt.Sprintf(format, args...))
}

func (p *xmlParser) note(line int, format string, args ...any) {
	p.cfg.Notes = append(p.cfg.Notes, fmt.Sprintf("%s:%d: ", p.path, line)+fmt.Sprintf(format, args...))
}

// attrs checks se's attributes against allowed and returns them.
func (p *xmlParser) attrs(se xml.StartElement, line int, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range se.Attr {
		n := a.Name.Local
		known := false
		for _, k := range allowed {
			if k == n {
				known = true
				break
			}
		}
		if !known || a.Name.Space != "" {
			return nil, p.errf(line, "unknown attribute %q on <%s>", n, se.Name.Local)
		}
		out[n] = strings.TrimSpace(a.Value)
	}
	return out, nil
}

// body reads se's content up to its end element: child is called for each
// child element (with the line its tag starts on), and the text is
// returned. A nil child makes child elements an error.
func (p *xmlParser) body(se xml.StartElement, child func(xml.StartElement, int) error) (string, error) {
	var text strings.Builder
	for {
		line, _ := p.d.InputPos()
		tok, err := p.d.Token()
		if err != nil {
			if err == io.EOF {
				return "", p.errf(line, "unexpected end of file inside <%s>", se.Name.Local)
			}
			return "", p.syntax(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if child == nil {
				return "", p.errf(line, "unknown element <%s> in <%s>", t.Name.Local, se.Name.Local)
			}
			if err := child(t, line); err != nil {
				return "", err
			}
		case xml.EndElement:
			return strings.TrimSpace(text.String()), nil
		case xml.CharData:
			text.Write(t)
		}
	}
}

// empty reads an element that takes no attributes and no content.
func (p *xmlParser) empty(se xml.StartElement, line int) error {
	if _, err := p.attrs(se, line); err != nil {
		return err
	}
	text, err := p.body(se, nil)
	if err == nil && text != "" {
		err = p.errf(line, "<%s> takes no text", se.Name.Local)
	}
	return err
}

// skip drops an element and everything in it.
func (p *xmlParser) skip() error {
	if err := p.d.Skip(); err != nil {
		return p.syntax(err)
	}
	return nil
}

func (p *xmlParser) noText(se xml.StartElement, line int, child func(xml.StartElement, int) error) error {
	text, err := p.body(se, child)
	if err == nil && text != "" {
		err = p.errf(line, "unexpected text %q in <%s>", trunc(text), se.Name.Local)
	}
	return err
}

func trunc(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}

func (p *xmlParser) root(se xml.StartElement, line int) error {
	if _, err := p.attrs(se, line); err != nil {
		return err
	}
	return p.noText(se, line, func(c xml.StartElement, l int) error {
		switch c.Name.Local {
		case "definesets":
			return p.list(c, l, "defineset", p.defineSet)
		case "sites":
			return p.list(c, l, "site", p.site)
		case "routergroups":
			return p.list(c, l, "routergroup", p.routerGroup)
		case "all":
			return p.all(c, l)
		case "directions":
			return p.list(c, l, "direction", func(d xml.StartElement, dl int) error {
				return p.direction(d, dl, &p.cfg.Directions, "")
			})
		case "rrddir":
			s, err := p.text(c, l)
			p.cfg.OutputDir = s
			return err
		case "sampletime":
			s, err := p.text(c, l)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return p.errf(l, "bad sampletime %q (seconds)", s)
			}
			p.cfg.SampleTime = n
			return nil
		case "scoredir":
			p.note(l, "<scoredir> dropped: scoreboards go under output_dir/<direction>/scoreboard/")
			return p.skip()
		case "dbdir", "dbsamples":
			p.note(l, "<%s> dropped: the DBM::Deep sample database is not implemented", c.Name.Local)
			return p.skip()
		}
		return p.errf(l, "unknown element <%s> in <%s>", c.Name.Local, se.Name.Local)
	})
}

// list reads a container whose children are all elements named item.
func (p *xmlParser) list(se xml.StartElement, line int, item string, f func(xml.StartElement, int) error) error {
	if _, err := p.attrs(se, line); err != nil {
		return err
	}
	return p.noText(se, line, func(c xml.StartElement, l int) error {
		if c.Name.Local != item {
			return p.errf(l, "unknown element <%s> in <%s>", c.Name.Local, se.Name.Local)
		}
		return f(c, l)
	})
}

func (p *xmlParser) text(se xml.StartElement, line int) (string, error) {
	if _, err := p.attrs(se, line); err != nil {
		return "", err
	}
	return p.body(se, nil)
}

func (p *xmlParser) name(a map[string]string, se xml.StartElement, line int, kind string) (string, error) {
	n, ok := a["name"]
	if !ok || n == "" {
		return "", p.errf(line, "<%s> needs a name", se.Name.Local)
	}
	if err := checkName(kind, n); err != nil {
		return "", p.errf(line, "%v", err)
	}
	return n, nil
}

func (p *xmlParser) prefixes(line int, s, what string) ([]string, error) {
	items := splitList(s)
	for _, it := range items {
		if _, err := parsePrefix(it); err != nil {
			return nil, p.errf(line, "%s: %v", what, err)
		}
	}
	return items, nil
}

func (p *xmlParser) site(se xml.StartElement, line int) error {
	a, err := p.attrs(se, line, "name", "subnets", "description")
	if err != nil {
		return err
	}
	n, err := p.name(a, se, line, "site")
	if err != nil {
		return err
	}
	if _, dup := p.cfg.Sites[n]; dup {
		return p.errf(line, "duplicate site %q", n)
	}
	subnets, err := p.prefixes(line, a["subnets"], "site "+n)
	if err != nil {
		return err
	}
	if len(subnets) == 0 {
		return p.errf(line, "site %q has no subnets", n)
	}
	if p.cfg.Sites == nil {
		p.cfg.Sites = map[string][]string{}
	}
	p.cfg.Sites[n] = subnets
	return p.noText(se, line, nil)
}

func (p *xmlParser) routerGroup(se xml.StartElement, line int) error {
	a, err := p.attrs(se, line, "name", "description")
	if err != nil {
		return err
	}
	n, err := p.name(a, se, line, "router group")
	if err != nil {
		return err
	}
	if _, dup := p.cfg.RouterGroups[n]; dup {
		return p.errf(line, "duplicate router group %q", n)
	}
	var routers []Router
	err = p.noText(se, line, func(c xml.StartElement, l int) error {
		if c.Name.Local != "router" {
			return p.errf(l, "unknown element <%s> in <routergroup>", c.Name.Local)
		}
		ra, err := p.attrs(c, l, "exporter", "interface", "interfaces", "localsubnets", "description")
		if err != nil {
			return err
		}
		var r Router
		if _, err := netip.ParseAddr(ra["exporter"]); err != nil {
			return p.errf(l, "bad exporter address %q", ra["exporter"])
		}
		r.Exporter = ra["exporter"]
		for _, s := range append(splitList(ra["interface"]), splitList(ra["interfaces"])...) {
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return p.errf(l, "bad interface %q (an SNMP ifIndex)", s)
			}
			r.Interfaces = append(r.Interfaces, uint32(v))
		}
		if r.LocalSubnets, err = p.prefixes(l, ra["localsubnets"], "router localsubnets"); err != nil {
			return err
		}
		if len(r.Interfaces) > 0 && len(r.LocalSubnets) > 0 {
			return p.errf(l, "router %s: give interfaces or localsubnets, not both", r.Exporter)
		}
		if len(r.Interfaces) == 0 && len(r.LocalSubnets) == 0 {
			return p.errf(l, "router %s needs interface(s) or localsubnets", r.Exporter)
		}
		routers = append(routers, r)
		return p.noText(c, l, nil)
	})
	if err != nil {
		return err
	}
	if len(routers) == 0 {
		return p.errf(line, "router group %q has no routers", n)
	}
	if p.cfg.RouterGroups == nil {
		p.cfg.RouterGroups = map[string][]Router{}
	}
	p.cfg.RouterGroups[n] = routers
	return nil
}

func (p *xmlParser) defineSet(se xml.StartElement, line int) error {
	a, err := p.attrs(se, line, "name", "description")
	if err != nil {
		return err
	}
	n, err := p.name(a, se, line, "set")
	if err != nil {
		return err
	}
	if _, dup := p.cfg.DefineSets[n]; dup {
		return p.errf(line, "duplicate set %q", n)
	}
	var ct Counters
	p.lines["define set "+n] = line
	if err := p.noText(se, line, func(c xml.StartElement, l int) error {
		ok, err := p.counter(c, l, &ct, "set "+n)
		if err == nil && !ok {
			err = p.errf(l, "unknown element <%s> in <defineset>", c.Name.Local)
		}
		return err
	}); err != nil {
		return err
	}
	if p.cfg.DefineSets == nil {
		p.cfg.DefineSets = map[string]Counters{}
	}
	p.cfg.DefineSets[n] = ct
	return nil
}

// counter handles the counter elements shared by definesets, all and
// directions; it reports false for other elements.
func (p *xmlParser) counter(se xml.StartElement, line int, ct *Counters, what string) (bool, error) {
	switch se.Name.Local {
	case "set":
		a, err := p.attrs(se, line, "name")
		if err != nil {
			return true, err
		}
		n, err := p.name(a, se, line, "set")
		if err != nil {
			return true, err
		}
		p.refs = append(p.refs, xref{kind: "set", name: n, what: what, line: line})
		ct.Sets = append(ct.Sets, n)
		return true, p.noText(se, line, nil)
	case "application":
		a, err := p.attrs(se, line, "name")
		if err != nil {
			return true, err
		}
		n, err := p.name(a, se, line, "application")
		if err != nil {
			return true, err
		}
		if _, dup := ct.Applications[n]; dup {
			return true, p.errf(line, "duplicate application %q in %s", n, what)
		}
		text, err := p.body(se, nil)
		if err != nil {
			return true, err
		}
		ports := splitList(text)
		if len(ports) == 0 {
			return true, p.errf(line, "application %q has no ports", n)
		}
		for _, s := range ports {
			if _, err := parsePorts(s); err != nil {
				return true, p.errf(line, "application %q: %v", n, err)
			}
		}
		if ct.Applications == nil {
			ct.Applications = map[string][]string{}
		}
		ct.Applications[n] = ports
		return true, nil
	case "services":
		text, err := p.text(se, line)
		if err != nil {
			return true, err
		}
		for _, s := range splitList(text) {
			if _, err := parsePorts(s); err != nil {
				return true, p.errf(line, "%v", err)
			}
			for _, old := range ct.Services {
				if serviceLabel(old) == serviceLabel(s) {
					return true, p.errf(line, "duplicate service %q in %s", s, what)
				}
			}
			ct.Services = append(ct.Services, s)
		}
		return true, nil
	case "protocols":
		text, err := p.text(se, line)
		if err != nil {
			return true, err
		}
		for _, s := range splitList(text) {
			if _, _, err := parseProto(s); err != nil {
				return true, p.errf(line, "%v", err)
			}
			ct.Protocols = append(ct.Protocols, s)
		}
		return true, nil
	case "otherservices":
		ct.OtherServices = true
	case "otherprotocols":
		ct.OtherProtocols = true
	case "multicast":
		ct.Multicast = true
	case "tos":
		ct.TOS = true
	case "dscp":
		ct.DSCP = true
	case "total":
		ct.Total = true
	case "ftp":
		p.note(line, "<ftp/> in %s dropped: FTP data-session tracking is not implemented", what)
		return true, p.skip()
	default:
		return false, nil
	}
	return true, p.empty(se, line)
}

func (p *xmlParser) sampleRate(a map[string]string, line int) (uint32, error) {
	s, ok := a["samplerate"]
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		return 0, p.errf(line, "bad samplerate %q", s)
	}
	return uint32(v), nil
}

func (p *xmlParser) all(se xml.StartElement, line int) error {
	if p.cfg.All != nil {
		return p.errf(line, "duplicate <all>")
	}
	a, err := p.attrs(se, line, "localsubnets", "samplerate")
	if err != nil {
		return err
	}
	all := &All{}
	p.lines["all"] = line
	if all.LocalSubnets, err = p.prefixes(line, a["localsubnets"], "all localsubnets"); err != nil {
		return err
	}
	if all.SampleRate, err = p.sampleRate(a, line); err != nil {
		return err
	}
	err = p.noText(se, line, func(c xml.StartElement, l int) error {
		ok, err := p.counter(c, l, &all.Counters, "all")
		if err != nil || ok {
			return err
		}
		switch c.Name.Local {
		case "scoreboard", "scoreboardother", "tuples":
			p.note(l, "<%s> in <all> dropped: scoreboards are per direction", c.Name.Local)
			return p.skip()
		}
		return p.errf(l, "unknown element <%s> in <all>", c.Name.Local)
	})
	p.cfg.All = all
	return err
}

func (p *xmlParser) direction(se xml.StartElement, line int, into *[]Direction, parent string) error {
	a, err := p.attrs(se, line, "name", "description", "from", "to", "nofrom", "noto",
		"fromsubnets", "tosubnets", "nofromsubnets", "notosubnets", "routergroup", "samplerate", "monitor")
	if err != nil {
		return err
	}
	n, err := p.name(a, se, line, "direction")
	if err != nil {
		return err
	}
	path := n
	if parent != "" {
		path = parent + "/" + n
	}
	if _, dup := p.dirLines[path]; dup {
		return p.errf(line, "duplicate direction %q (first on line %d)", path, p.dirLines[path])
	}
	p.dirLines[path] = line
	p.lines["direction "+path] = line
	d := Direction{Name: n, RouterGroup: a["routergroup"]}
	what := "direction " + path
	if d.RouterGroup != "" {
		p.refs = append(p.refs, xref{kind: "router group", name: d.RouterGroup, what: what, line: line})
	}
	for _, f := range []struct {
		attr string
		dst  *[]string
	}{{"from", &d.From}, {"to", &d.To}, {"nofrom", &d.NoFrom}, {"noto", &d.NoTo}} {
		*f.dst = splitList(a[f.attr])
		for _, s := range *f.dst {
			p.refs = append(p.refs, xref{kind: "site", name: s, what: what + " " + f.attr, line: line})
		}
	}
	for _, f := range []struct {
		attr string
		dst  *[]string
	}{{"fromsubnets", &d.FromSubnets}, {"tosubnets", &d.ToSubnets}, {"nofromsubnets", &d.NoFromSubnets}, {"notosubnets", &d.NoToSubnets}} {
		if *f.dst, err = p.prefixes(line, a[f.attr], what+" "+f.attr); err != nil {
			return err
		}
	}
	if d.SampleRate, err = p.sampleRate(a, line); err != nil {
		return err
	}
	if _, ok := a["monitor"]; ok {
		p.note(line, "monitor attribute of %s dropped", what)
	}
	err = p.noText(se, line, func(c xml.StartElement, l int) error {
		ok, err := p.counter(c, l, &d.Counters, what)
		if err != nil || ok {
			return err
		}
		switch c.Name.Local {
		case "scoreboard":
			if d.Scoreboard != nil {
				return p.errf(l, "duplicate <scoreboard> in %s", what)
			}
			sb, err := p.scoreboard(c, l, what)
			d.Scoreboard = sb
			return err
		case "scoreboardother", "tuples":
			p.note(l, "<%s> in %s dropped: not implemented", c.Name.Local, what)
			return p.skip()
		case "direction":
			return p.direction(c, l, &d.Directions, path)
		case "directions":
			return p.list(c, l, "direction", func(cc xml.StartElement, ll int) error {
				return p.direction(cc, ll, &d.Directions, path)
			})
		}
		return p.errf(l, "unknown element <%s> in <direction>", c.Name.Local)
	})
	if err != nil {
		return err
	}
	*into = append(*into, d)
	return nil
}

func (p *xmlParser) flag(a map[string]string, k string, line int) (bool, error) {
	switch strings.ToLower(a[k]) {
	case "", "0", "no", "false":
		return false, nil
	case "1", "yes", "true":
		return true, nil
	}
	return false, p.errf(line, "bad %s=%q (1 or 0)", k, a[k])
}

func (p *xmlParser) scoreboard(se xml.StartElement, line int, what string) (*Scoreboard, error) {
	a, err := p.attrs(se, line, "hosts", "ports", "topn", "latesthosts", "latestports")
	if err != nil {
		return nil, err
	}
	sb := &Scoreboard{}
	if sb.Hosts, err = p.flag(a, "hosts", line); err != nil {
		return nil, err
	}
	if sb.Ports, err = p.flag(a, "ports", line); err != nil {
		return nil, err
	}
	if s, ok := a["topn"]; ok {
		if sb.TopN, err = strconv.Atoi(s); err != nil || sb.TopN <= 0 {
			return nil, p.errf(line, "bad topn %q", s)
		}
	}
	if a["latesthosts"] != "" || a["latestports"] != "" {
		p.note(line, "latesthosts/latestports of %s dropped: the latest scoreboard is scoreboard/scoreboard.html", what)
	}
	err = p.noText(se, line, func(c xml.StartElement, l int) error {
		if c.Name.Local != "report" {
			return p.errf(l, "unknown element <%s> in <scoreboard>", c.Name.Local)
		}
		if _, err := p.attrs(c, l, "count", "hostsbase", "portsbase", "scorekeep", "numkeep"); err != nil {
			return err
		}
		p.note(l, "aggregate <report> in %s dropped: not implemented", what)
		return p.skip()
	})
	return sb, err
}

// checkRefs reports references to undefined sites, sets and router groups.
// A from/to item that is not a site must be a prefix.
func (p *xmlParser) checkRefs() error {
	for _, r := range p.refs {
		switch r.kind {
		case "set":
			if _, ok := p.cfg.DefineSets[r.name]; !ok {
				return p.errf(r.line, "%s: undefined set %q", r.what, r.name)
			}
		case "router group":
			if _, ok := p.cfg.RouterGroups[r.name]; !ok {
				return p.errf(r.line, "%s: undefined router group %q", r.what, r.name)
			}
		case "site":
			if _, ok := p.cfg.Sites[r.name]; ok {
				continue
			}
			if _, err := parsePrefix(r.name); err != nil {
				if strings.ContainsAny(r.name, "/:") || strings.Count(r.name, ".") == 3 {
					return p.errf(r.line, "%s: %v", r.what, err)
				}
				return p.errf(r.line, "%s: undefined site %q", r.what, r.name)
			}
		}
	}
	return nil
}

// charsetReader accepts the 8-bit encodings JKFlow.xml files declare
// (ISO-8859-1, as in JKFlow's own example, and US-ASCII).
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii":
		return &latin1Reader{r: in}, nil
	case "utf-8", "utf8":
		return in, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q (UTF-8 or ISO-8859-1)", label)
}

// latin1Reader converts ISO-8859-1 to UTF-8.
type latin1Reader struct {
	r   io.Reader
	buf []byte
	out []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if cap(l.buf) == 0 {
			l.buf = make([]byte, 4096)
		}
		n, err := l.r.Read(l.buf[:cap(l.buf)])
		for _, b := range l.buf[:n] {
			l.out = utf8.AppendRune(l.out, rune(b))
		}
		if n == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}
