package hostsim_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
)

func loadCAPKs(t *testing.T) []hostsim.CAPK {
	t.Helper()
	ks, err := hostsim.LoadCAPKs(capkDir)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestCAPKTestdataMatchesPEM: each public half in agent/sim/testca/capk.yaml is
// the public half of its TEST-ONLY private key, and its checksum is the
// SHA-1 openssl computes over RID, index, modulus and exponent.
func TestCAPKTestdataMatchesPEM(t *testing.T) {
	var f struct {
		Keys []map[string]string `yaml:"keys"`
	}
	b, err := os.ReadFile(filepath.Join(capkDir, "capk.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{"80": 128, "81": 144, "82": 176, "83": 248}
	for _, k := range f.Keys {
		pem := filepath.Join(capkDir, "A000000333-"+k["index"]+".TEST-ONLY.key.pem")
		mod := strings.TrimSpace(strings.TrimPrefix(string(openssl(t, nil, "rsa", "-in", pem, "-noout", "-modulus")), "Modulus="))
		if mod != k["modulus"] || len(mod) != 2*sizes[k["index"]] {
			t.Errorf("key %s: modulus of the PEM differs from capk.yaml or is not %d bytes", k["index"], sizes[k["index"]])
		}
		text := string(openssl(t, nil, "rsa", "-in", pem, "-noout", "-text"))
		if e := map[string]string{"03": "publicExponent: 3 ", "010001": "publicExponent: 65537 "}[k["exponent"]]; e == "" || !strings.Contains(text, e) {
			t.Errorf("key %s: exponent %s is not the PEM's", k["index"], k["exponent"])
		}
		sum := openssl(t, unhex(t, k["rid"]+k["index"]+k["modulus"]+k["exponent"]), "dgst", "-sha1", "-binary")
		if !strings.EqualFold(hex.EncodeToString(sum), k["checksum"]) {
			t.Errorf("key %s: checksum differs from openssl's", k["index"])
		}
	}
	if len(loadCAPKs(t)) != len(f.Keys) || len(f.Keys) != 4 {
		t.Fatalf("LoadCAPKs read %d keys of %d", len(loadCAPKs(t)), len(f.Keys))
	}
}

// objects decodes field 62 after its control byte.
func objects(t *testing.T, f62 []byte) []emv.TLV {
	t.Helper()
	objs, err := emv.DecodeTLV(f62[1:])
	if err != nil {
		t.Fatalf("field 62 %X: %v", f62, err)
	}
	return objs
}

// TestCAPKDownload: the query pages through the keys two at a time ('2'
// while more follow, the last page '3', or '1' when so configured), each key
// downloads with its checksum, and the end is booked with the count.
func TestCAPKDownload(t *testing.T) {
	for _, last := range []byte{'3', '1'} {
		t.Run(string(last), func(t *testing.T) {
			keys := loadCAPKs(t)
			in := newInstall(t, func(c *hostsim.Config) {
				c.CAPKs, c.CAPKPage = keys, 3
				if last == '1' {
					c.LastPageFlag = '1'
				}
			})
			c := in.terminal()
			c.signOn("004", hostsim.LayoutStandard)
			type ref struct {
				rid []byte
				idx byte
			}
			var list []ref
			for page := 0; ; page++ {
				r := c.query("372", len(list))
				f62 := r.f62()
				if r.rc() != "00" || r.f60() != "00000001372" {
					t.Fatalf("query: %s, 60 %s", r.rc(), r.f60())
				}
				objs := objects(t, f62)
				for i := 0; i+2 < len(objs); i += 3 {
					if objs[i].Tag != 0x9F06 || objs[i+1].Tag != 0x9F22 || objs[i+2].Tag != 0xDF05 || string(objs[i+2].Value) != "20491231" {
						t.Fatalf("list entry %d: %v", i/3, objs[i:i+3])
					}
					list = append(list, ref{objs[i].Value, objs[i+1].Value[0]})
				}
				want := byte('2')
				if len(list) == len(keys) {
					want = last
				}
				if f62[0] != want || len(objs) != 3*min(3, len(keys)-3*page) {
					t.Fatalf("page %d: flag %c, %d objects", page, f62[0], len(objs))
				}
				if f62[0] != '2' {
					break
				}
			}
			if len(list) != len(keys) {
				t.Fatalf("listed %d keys of %d", len(list), len(keys))
			}
			for i, k := range list {
				r := c.adminReply("0800", "370", tlv(0x9F06, k.rid, 0x9F22, []byte{k.idx}), nil)
				f62 := r.f62()
				if r.rc() != "00" || f62[0] != '1' {
					t.Fatalf("key %d: %s %q", i, r.rc(), f62[:1])
				}
				objs := objects(t, f62)
				var tags []string
				val := map[emv.Tag][]byte{}
				for _, o := range objs {
					tags = append(tags, o.Tag.String())
					val[o.Tag] = o.Value
				}
				if strings.Join(tags, " ") != "9F06 9F22 DF05 DF06 DF07 DF02 DF04 DF03" {
					t.Fatalf("key %d tags %v", i, tags)
				}
				sum := openssl(t, append(append(append(append([]byte{}, val[0x9F06]...), val[0x9F22]...), val[0xDF02]...), val[0xDF04]...),
					"dgst", "-sha1", "-binary")
				if !bytes.Equal(sum, val[0xDF03]) || !bytes.Equal(val[0xDF02], keys[i].Modulus) {
					t.Fatalf("key %d: DF03 is not the SHA-1 of RID, index, modulus, exponent", i)
				}
			}
			end := c.adminReply("0800", "371", nil, nil)
			if end.rc() != "00" || end.f60() != "00000001371" {
				t.Fatalf("end: %s %s", end.rc(), end.f60())
			}
			d := in.entries(ledger.EventDownloaded)
			if len(d) != 1 || d[0].Kind != ledger.KindCAPK || d[0].Code != "371" || d[0].Count != len(keys) || d[0].Codes != "unionpay" {
				t.Fatalf("ledger %+v", d)
			}
		})
	}
}

// TestDownloadRefusals: an unknown key or AID is '0', a malformed request
// 30, an empty host '0', and none of it without a sign-on (77).
func TestDownloadRefusals(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) { c.NoCAPKs = true })
	c := in.terminal()
	if r := c.query("372", 0); r.rc() != "77" {
		t.Fatalf("query before sign-on: %s", r.rc())
	}
	c.signOn("004", hostsim.LayoutStandard)
	for _, tc := range []struct {
		name, mti, code string
		f62             []byte
		rc              string
		flag            byte
	}{
		{"no keys", "0820", "372", []byte("100"), "00", '0'},
		{"unknown key", "0800", "370", tlv(0x9F06, unhex(t, "A000000333"), 0x9F22, []byte{0x99}), "00", '0'},
		{"unknown AID", "0800", "380", tlv(0x9F06, unhex(t, "A000000333999999")), "00", '0'},
		{"query not 1", "0820", "372", []byte("200"), "30", 0},
		{"query not digits", "0820", "382", []byte("1x"), "30", 0},
		{"key request not TLV", "0800", "370", []byte{0x9F, 0x06, 0x09, 1}, "30", 0},
		{"key request without index", "0800", "370", tlv(0x9F06, unhex(t, "A000000333")), "30", 0},
		{"AID request without AID", "0800", "380", nil, "30", 0},
		{"past the end", "0820", "382", []byte("199"), "00", '0'},
	} {
		r := c.adminReply(tc.mti, tc.code, tc.f62, nil)
		if r.rc() != tc.rc || tc.flag != 0 && (len(r.f62()) != 1 || r.f62()[0] != tc.flag) {
			t.Errorf("%s: %s %q", tc.name, r.rc(), r.f62())
		}
	}
}

// TestICParamsDownload: the AID list, each AID's parameters in the public
// POSPs' tag order (the application version under 9F08, or 9F09 when so
// configured; 12 tags in the specification's set), and the end.
func TestICParamsDownload(t *testing.T) {
	posp := "9F06 DF01 9F08 DF11 DF12 DF13 9F1B DF15 DF16 DF17 DF14 DF18 9F7B DF19 DF20 DF21"
	spec := "9F06 DF01 9F09 DF11 DF12 DF13 9F1B DF15 DF16 DF17 DF14 DF18"
	for name, tc := range map[string]struct {
		cfg  func(*hostsim.Config)
		tags string
	}{
		"posp": {nil, posp},
		"spec": {func(c *hostsim.Config) { c.AppVersionTag, c.ICTags = 0x9F09, hostsim.ICTagsSpec }, spec},
	} {
		t.Run(name, func(t *testing.T) {
			in := newInstall(t, tc.cfg)
			c := in.terminal()
			c.signOn("004", hostsim.LayoutStandard)
			r := c.query("382", 0)
			if r.rc() != "00" || r.f62()[0] != '1' {
				t.Fatalf("query %s %q", r.rc(), r.f62()[:1])
			}
			var aids [][]byte
			for _, o := range objects(t, r.f62()) {
				aids = append(aids, o.Value)
			}
			if len(aids) != 4 || hex.EncodeToString(aids[0]) != "a000000333010101" {
				t.Fatalf("AIDs %X", aids)
			}
			for _, aid := range aids {
				r := c.adminReply("0800", "380", tlv(0x9F06, aid), nil)
				var tags []string
				val := map[emv.Tag][]byte{}
				for _, o := range objects(t, r.f62()) {
					tags = append(tags, o.Tag.String())
					val[o.Tag] = o.Value
				}
				if r.f62()[0] != '1' || strings.Join(tags, " ") != tc.tags {
					t.Fatalf("AID %X: %q %v", aid, r.f62()[:1], tags)
				}
				if !bytes.Equal(val[0x9F06], aid) || hex.EncodeToString(val[0xDF11]) != "d84000a800" || val[0xDF16][0] != 0x99 ||
					hex.EncodeToString(val[0xDF14]) != "9f3704" || val[0xDF18][0] != 1 || len(val[0x9F1B]) != 4 {
					t.Fatalf("AID %X values %X", aid, val)
				}
			}
			if end := c.adminReply("0800", "381", nil, nil); end.rc() != "00" || end.f60() != "00000001381" {
				t.Fatalf("end %s %s", end.rc(), end.f60())
			}
			d := in.entries(ledger.EventDownloaded)
			if len(d) != 1 || d[0].Kind != ledger.KindICParams || d[0].Count != 4 || d[0].Code != "381" {
				t.Fatalf("ledger %+v", d)
			}
		})
	}
}

// TestAIDPagination: 4 AIDs one at a time.
func TestAIDPagination(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) { c.AIDPage = 1 })
	c := in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	var flags string
	for i := 0; i < 4; i++ {
		r := c.query("382", i)
		flags += string(r.f62()[0])
		if n := len(objects(t, r.f62())); n != 1 {
			t.Fatalf("page %d: %d AIDs", i, n)
		}
	}
	if flags != "2223" {
		t.Fatalf("flags %s", flags)
	}
}

// TestSecondCodeTable: with the table that ends the IC parameter download
// with 351, 351 is the end (answered 351, booked with the table's name) and
// 381 is no code of the acquirer's (a sign-on of an unknown mode, 12); the
// Centerm table's parameter download is 364, ended by 361.
func TestSecondCodeTable(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) { c.Codes = hostsim.TableIC351 })
	c := in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	if r := c.adminReply("0800", "381", nil, nil); r.rc() != "12" {
		t.Fatalf("381 under the 351 table: %s", r.rc())
	}
	if r := c.adminReply("0800", "351", nil, nil); r.rc() != "00" || r.f60() != "00000001351" {
		t.Fatalf("351: %s %s", r.rc(), r.f60())
	}
	d := in.entries(ledger.EventDownloaded)
	if len(d) != 1 || d[0].Code != "351" || d[0].Codes != "ic-end-351" || d[0].Kind != ledger.KindICParams {
		t.Fatalf("ledger %+v", d)
	}

	in = newInstall(t, func(c *hostsim.Config) { c.Codes = hostsim.TableCenterm })
	c = in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	if r := c.adminReply("0800", "364", nil, nil); r.rc() != "00" || r.f60() != "00000001364" || len(r.f62()) == 0 {
		t.Fatalf("364: %s %s", r.rc(), r.f60())
	}
	if len(in.entries(ledger.EventDownloaded)) != 0 {
		t.Fatal("the download was booked before its end")
	}
	if r := c.adminReply("0800", "361", nil, nil); r.rc() != "00" || r.f60() != "00000001361" {
		t.Fatalf("361: %s %s", r.rc(), r.f60())
	}
	if d := in.entries(ledger.EventDownloaded); len(d) != 1 || d[0].Code != "361" || d[0].Kind != ledger.KindTermParams {
		t.Fatalf("ledger %+v", d)
	}
}

// statusUpload is a status upload as the public LiaoYang app writes it.
const statusUpload = "011021031041051" + "1160" + "1260" + "133" + "14              " + "15              " +
	"16              " + "17              " + "180" + "1900" + "200" + "211" + "233" + "251" + "27 0" + "51007200999980"

// TestParamsAndStatus: the parameter download is tags of the public format's
// lengths, booked; a status upload in the public format is read and booked;
// one that does not parse is 30.
func TestParamsAndStatus(t *testing.T) {
	in := newInstall(t, nil)
	c := in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	r := c.adminReply("0800", "360", nil, nil)
	if r.rc() != "00" || r.f60() != "00000001360" {
		t.Fatalf("360: %s %s", r.rc(), r.f60())
	}
	lens := map[string]int{"11": 2, "12": 2, "13": 1, "14": 14, "15": 14, "16": 14, "17": 14, "18": 1, "19": 2, "20": 1,
		"21": 1, "22": 40, "23": 1, "24": 1, "25": 1}
	var tags []string
	for f := r.f62(); len(f) > 0; {
		n, ok := lens[string(f[:2])]
		if !ok || len(f) < 2+n {
			t.Fatalf("parameters %q do not parse at %q", r.f62(), f)
		}
		tags = append(tags, string(f[:2]))
		f = f[2+n:]
	}
	if len(tags) != 15 {
		t.Fatalf("tags %v", tags)
	}
	if r := c.adminReply("0820", "362", []byte(statusUpload+"\x00"), nil); r.rc() != "00" || r.f60() != "00000001362" {
		t.Fatalf("362: %s %s", r.rc(), r.f60())
	}
	if r := c.adminReply("0820", "362", []byte("99x"), nil); r.rc() != "30" {
		t.Fatalf("broken status: %s", r.rc())
	}
	var got []string
	for _, e := range in.led.Entries() {
		got = append(got, fmt.Sprintf("%s/%s/%s/%d", e.Event, e.Kind, e.Code, e.Count))
	}
	if strings.Join(got, " ") != "downloaded/term-params/360/15 status-uploaded/status/362/20" {
		t.Fatalf("ledger %v", got)
	}
}
