package jkflow

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestParseXMLGolden converts the example JKFlow.xml and compares with
// the golden YAML, which must also load back as the same configuration
// and compile.
func TestParseXMLGolden(t *testing.T) {
	cfg, err := ParseXML("testdata/JKFlow.xml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "JKFlow.golden.yaml")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("YAML differs from %s (run with -update to accept):\n%s", golden, got)
	}
	wantNotes := []string{
		"testdata/JKFlow.xml:41: latesthosts/latestports of direction campus_partner dropped",
		"testdata/JKFlow.xml:42: aggregate <report> in direction campus_partner dropped",
		"testdata/JKFlow.xml:58: <ftp/> in direction uplinks dropped",
		"testdata/JKFlow.xml:69: <scoredir> dropped",
	}
	if len(cfg.Notes) != len(wantNotes) {
		t.Errorf("notes: %q", cfg.Notes)
	}
	for i, w := range wantNotes {
		if i < len(cfg.Notes) && !strings.HasPrefix(cfg.Notes[i], w) {
			t.Errorf("note %d = %q, want prefix %q", i, cfg.Notes[i], w)
		}
	}
	back := parseYAML(t, string(want))
	again, err := back.YAML()
	if err != nil || string(again) != string(want) {
		t.Errorf("YAML round trip: %v\n%s", err, again)
	}
	if _, err := compile(back); err != nil {
		t.Errorf("golden YAML does not compile: %v", err)
	}
}

func TestParseXMLErrors(t *testing.T) {
	const head = "<config>\n"
	sites := "<sites>\n<site name=\"a\" subnets=\"10.0.0.0/8\"/>\n</sites>\n"
	tests := []struct {
		name, xml, want string
	}{
		{"bad prefix in site", head + "<sites>\n<site name=\"a\" subnets=\"10.0.0/8\"/>\n</sites>\n</config>", `x.xml:3: site a: bad prefix "10.0.0/8"`},
		{"host bits", head + "<sites>\n<site name=\"a\" subnets=\"10.0.0.1/8\"/>\n</sites>\n</config>", `x.xml:3: site a: bad prefix "10.0.0.1/8": host bits set`},
		{"bad localsubnets", head + "<all localsubnets=\"10.0.0.0/33\">\n</all>\n</config>", `x.xml:2: all localsubnets: bad prefix "10.0.0.0/33"`},
		{"bad fromsubnets", head + "<directions>\n<direction name=\"d\"\n  fromsubnets=\"fe80::/129\"/>\n</directions>\n</config>", `x.xml:3: direction d fromsubnets: bad prefix`},
		{"bad prefix in from", head + sites + "<directions>\n<direction name=\"d\" from=\"10.1.2/24\"/>\n</directions>\n</config>", `x.xml:6: direction d from: bad prefix "10.1.2/24"`},
		{"unknown element at top", head + "<sitez/>\n</config>", `x.xml:2: unknown element <sitez> in <config>`},
		{"unknown element in direction", head + "<directions>\n<direction name=\"d\" from=\"10.0.0.0/8\">\n<totals/>\n</direction>\n</directions>\n</config>", `x.xml:4: unknown element <totals> in <direction>`},
		{"unknown element in defineset", head + "<definesets>\n<defineset name=\"s\">\n\n<service>80/tcp</service>\n</defineset>\n</definesets>\n</config>", `x.xml:5: unknown element <service> in <defineset>`},
		{"unknown attribute", head + "<sites>\n<site name=\"a\" subnet=\"10.0.0.0/8\"/>\n</sites>\n</config>", `x.xml:3: unknown attribute "subnet" on <site>`},
		{"unknown attribute on direction", head + "<directions>\n<direction name=\"d\" form=\"a\"/>\n</directions>\n</config>", `x.xml:3: unknown attribute "form" on <direction>`},
		{"duplicate site", head + "<sites>\n<site name=\"a\" subnets=\"10.0.0.0/8\"/>\n<site name=\"a\" subnets=\"11.0.0.0/8\"/>\n</sites>\n</config>", `x.xml:4: duplicate site "a"`},
		{"duplicate set", head + "<definesets>\n<defineset name=\"s\"><total/></defineset>\n<defineset name=\"s\"><total/></defineset>\n</definesets>\n</config>", `x.xml:4: duplicate set "s"`},
		{"duplicate application label", head + "<definesets>\n<defineset name=\"s\">\n<application name=\"web\">80/tcp</application>\n<application name=\"web\">443/tcp</application>\n</defineset>\n</definesets>\n</config>", `x.xml:5: duplicate application "web" in set s`},
		{"duplicate service", head + "<definesets>\n<defineset name=\"s\">\n<services>22/tcp,22/tcp</services>\n</defineset>\n</definesets>\n</config>", `x.xml:4: duplicate service "22/tcp" in set s`},
		{"duplicate direction", head + sites + "<directions>\n<direction name=\"d\" from=\"a\"/>\n<direction name=\"d\" to=\"a\"/>\n</directions>\n</config>", `x.xml:7: duplicate direction "d" (first on line 6)`},
		{"duplicate nested direction", head + sites + "<directions>\n<direction name=\"d\" from=\"a\">\n<direction name=\"x\" to=\"a\"/>\n<direction name=\"x\" to=\"a\"/>\n</direction>\n</directions>\n</config>", `x.xml:8: duplicate direction "d/x"`},
		{"bad port", head + "<definesets>\n<defineset name=\"s\">\n<services>22/tcp,70000/tcp</services>\n</defineset>\n</definesets>\n</config>", `x.xml:4: bad port "70000/tcp"`},
		{"bad port proto", head + "<definesets>\n<defineset name=\"s\">\n<application name=\"w\">80/icmp</application>\n</defineset>\n</definesets>\n</config>", `x.xml:4: application "w": bad port "80/icmp": protocol must be tcp or udp`},
		{"reversed range", head + "<definesets>\n<defineset name=\"s\">\n<services>23-22/tcp</services>\n</defineset>\n</definesets>\n</config>", `x.xml:4: bad port "23-22/tcp"`},
		{"bad protocol", head + "<definesets>\n<defineset name=\"s\">\n<protocols>tcp,tpc</protocols>\n</defineset>\n</definesets>\n</config>", `x.xml:4: bad protocol "tpc"`},
		{"undefined set", head + "<all>\n<set name=\"nope\"/>\n</all>\n</config>", `x.xml:3: all: undefined set "nope"`},
		{"undefined site", head + sites + "<directions>\n<direction name=\"d\" from=\"a\" to=\"b\"/>\n</directions>\n</config>", `x.xml:6: direction d to: undefined site "b"`},
		{"undefined router group", head + "<directions>\n<direction name=\"d\" routergroup=\"rg\"/>\n</directions>\n</config>", `x.xml:3: direction d: undefined router group "rg"`},
		{"bad exporter", head + "<routergroups>\n<routergroup name=\"rg\">\n<router exporter=\"192.0.2.300\" interface=\"1\"/>\n</routergroup>\n</routergroups>\n</config>", `x.xml:4: bad exporter address "192.0.2.300"`},
		{"bad interface", head + "<routergroups>\n<routergroup name=\"rg\">\n<router exporter=\"192.0.2.1\" interfaces=\"1,x\"/>\n</routergroup>\n</routergroups>\n</config>", `x.xml:4: bad interface "x"`},
		{"bad samplerate", head + "<all samplerate=\"0\"/>\n</config>", `x.xml:2: bad samplerate "0"`},
		{"bad sampletime", head + "<sampletime>5m</sampletime>\n</config>", `x.xml:2: bad sampletime "5m"`},
		{"bad name", head + "<sites>\n<site name=\"a/b\" subnets=\"10.0.0.0/8\"/>\n</sites>\n</config>", `x.xml:3: bad site name "a/b"`},
		{"text in empty element", head + "<all><total>yes</total></all>\n</config>", `x.xml:2: <total> takes no text`},
		{"syntax error", head + "<sites>\n<site name=\"a\" subnets=\"10.0.0.0/8\">\n</sites>\n</config>", `x.xml:4: element <site> closed by </sites>`},
		{"unclosed", head + "<sites>\n", `x.xml:3: unexpected EOF`},
		{"tos and dscp", head + "<all><tos/><dscp/></all>\n</config>", `x.xml:2: all: tos and dscp both write`},
		{"port overlap", head + "<all><application name=\"a\">80/tcp</application><application name=\"b\">70-90/tcp</application></all>\n</config>", `x.xml:2: all: port 80/tcp in both "a" and "b"`},
		{"label clash across sets", head + "<definesets>\n<defineset name=\"s\"><application name=\"web\">80/tcp</application></defineset>\n<defineset name=\"t\"><application name=\"web\">81/tcp</application></defineset>\n</definesets>\n<directions>\n<direction name=\"d\" fromsubnets=\"10.0.0.0/8\">\n<set name=\"s\"/><set name=\"t\"/>\n</direction>\n</directions>\n</config>", `x.xml:7: direction d: duplicate application "web"`},
		{"service and application clash", head + "<all>\n<application name=\"22_tcp\">2222/tcp</application>\n<services>22/tcp</services>\n</all>\n</config>", `x.xml:2: all: duplicate label "service_22_tcp_src"`},
		{"direction selects nothing", head + "<directions>\n<direction name=\"d\"><total/></direction>\n</directions>\n</config>", `x.xml:3: direction d selects nothing`},
		{"other with from", head + "<directions>\n<direction name=\"other\" fromsubnets=\"10.0.0.0/8\"/>\n</directions>\n</config>", `x.xml:3: direction other: the catch-all direction takes no from/to`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseXML("x.xml", strings.NewReader(tt.xml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q\n  want prefix %q", err, tt.want)
			}
		})
	}
}
