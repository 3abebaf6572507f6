package hostsim_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
)

// TestDemandSchedule: the first sign-on's answer asks for the IC public keys
// and then the IC parameters (4 rides until the CAPK download ends, then 5
// until the IC download ends), a sale's answer asks to sign on again (3,
// until it does), and a change of the CAPK list asks for the keys again.
func TestDemandSchedule(t *testing.T) {
	keys := loadCAPKs(t)
	in := newInstall(t, func(c *hostsim.Config) {
		c.CAPKs = keys
		c.Demands = []hostsim.Demand{{On: hostsim.KindSignOn, Nth: 1, Digits: "45"}, {On: hostsim.KindSale, Nth: 1, Digits: "3"},
			{On: hostsim.ChangeCAPK, Digits: "4"}}
	})
	c := in.terminal()
	var got []byte
	step := func(r reply) { t.Helper(); got = append(got, r.demand()) }
	r, _ := c.signOn("004", hostsim.LayoutStandard)
	step(r)
	step(c.query("372", 0))
	step(c.adminReply("0800", "371", nil, nil)) // the CAPK download ends: 5 is next
	step(c.query("382", 0))
	step(c.adminReply("0800", "381", nil, nil))
	step(c.sale(1))
	step(c.sale(2)) // still 3: the terminal has not signed on
	r, _ = c.signOn("004", hostsim.LayoutStandard)
	step(r)
	if err := in.srv.SetCAPKs(keys[:2]); err != nil {
		t.Fatal(err)
	}
	step(c.sale(3))
	step(c.adminReply("0800", "371", nil, nil))
	if string(got) != "4455033040" {
		t.Fatalf("demands %s, want 4455033040", got)
	}
}

// TestDemandOnceAndByHand: a Once demand rides on one answer only; Demand
// adds one as a back office would; 1 ends with the parameter download and 2
// with the status upload.
func TestDemandOnceAndByHand(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) {
		c.Demands = []hostsim.Demand{{On: hostsim.KindSignOn, Digits: "12", Once: true}}
	})
	c := in.terminal()
	var got []byte
	r, _ := c.signOn("004", hostsim.LayoutStandard)
	got = append(got, r.demand(), c.sale(1).demand(), c.sale(2).demand())
	if err := in.srv.Demand(tid, "21"); err != nil {
		t.Fatal(err)
	}
	got = append(got, c.sale(3).demand())
	got = append(got, c.adminReply("0820", "362", []byte(statusUpload), nil).demand())
	got = append(got, c.adminReply("0800", "360", nil, nil).demand(), c.sale(4).demand())
	if string(got) != "1202100" {
		t.Fatalf("demands %s, want 1202100", got)
	}
	if err := in.srv.Demand(tid, "x"); err == nil {
		t.Fatal("a demand of x accepted")
	}
}

func TestParseDemand(t *testing.T) {
	for in, want := range map[string]hostsim.Demand{
		"sign-on#1=45":    {On: hostsim.KindSignOn, Nth: 1, Digits: "45"},
		"sale=3":          {On: hostsim.KindSale, Digits: "3"},
		"capk-change=4":   {On: hostsim.ChangeCAPK, Digits: "4"},
		"settle#2=9,once": {On: hostsim.KindSettle, Nth: 2, Digits: "9", Once: true},
	} {
		if got, err := hostsim.ParseDemand(in); err != nil || got != want {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"sign-on", "nothing=4", "sale#0=3", "sale#x=3", "sale=", "sale=0", "sale=3,twice"} {
		if _, err := hostsim.ParseDemand(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestAnswerFaultsOnNewKinds: every message of the install procedure can
// be made to go unanswered, answered with a MAC that does not verify, with
// another response code, or with a broken field 62.
func TestAnswerFaultsOnNewKinds(t *testing.T) {
	type msg struct {
		kind string
		send func(c *term) (reply, error)
	}
	keys := loadCAPKs(t)
	adm := func(mti, code string, f62 []byte, extra map[int]string) func(c *term) (reply, error) {
		return func(c *term) (reply, error) { return c.exchange(c.admin(mti, code, f62, extra), false) }
	}
	msgs := []msg{
		{hostsim.KindSignOn, adm("0800", "004", nil, nil)},
		{hostsim.KindCAPKQuery, adm("0820", "372", []byte("100"), nil)},
		{hostsim.KindCAPKDownload, adm("0800", "370", tlv(0x9F06, keys[0].RID, 0x9F22, []byte{keys[0].Index}), nil)},
		{hostsim.KindCAPKEnd, adm("0800", "371", nil, nil)},
		{hostsim.KindICQuery, adm("0820", "382", []byte("100"), nil)},
		{hostsim.KindICDownload, adm("0800", "380", tlv(0x9F06, unhex(t, "A000000333010101")), nil)},
		{hostsim.KindICEnd, adm("0800", "381", nil, nil)},
		{hostsim.KindParams, adm("0800", "360", nil, nil)},
		{hostsim.KindStatus, adm("0820", "362", []byte(statusUpload), nil)},
		{hostsim.KindSettle, adm("0500", "201", nil, map[int]string{48: totals(0, 0, 0, 0)})},
		{hostsim.KindBatchUpload, adm("0320", "201", nil, map[int]string{48: "01" + batchRecord("000009", card.PAN.Reveal(), "000000000001")})},
		{hostsim.KindBatchEnd, adm("0320", "207", nil, map[int]string{48: "0000"})},
		{hostsim.KindSignOff, adm("0820", "002", nil, nil)},
	}
	for _, a := range []hostsim.Action{hostsim.NoAnswer, hostsim.WrongMAC, hostsim.WrongRC, hostsim.BrokenF62} {
		t.Run(string(a), func(t *testing.T) {
			in := newInstall(t, func(c *hostsim.Config) { c.CAPKs = keys })
			clean := in.terminal()
			clean.signOn("004", hostsim.LayoutStandard)
			faulty := in.terminal()
			faulty.mak, faulty.batch, faulty.timeout = clean.mak, clean.batch, 150*time.Millisecond
			for _, mg := range msgs {
				// The same message once cleanly (settlement and its end
				// need a fresh batch, so each goes to its own host state),
				// then with the fault.
				want, err := mg.send(clean)
				if err != nil {
					t.Fatalf("%s: %v", mg.kind, err)
				}
				in.srv.Inject(mg.kind, hostsim.Fault{Action: a, RC: "A1"})
				got, err := mg.send(faulty)
				switch a {
				case hostsim.NoAnswer:
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						t.Fatalf("%s: %v, want a timeout", mg.kind, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", mg.kind, err)
				}
				switch a {
				case hostsim.WrongMAC:
					mac := acquirer.GetBytes(got.m, 64)
					if mac == nil || acquirer.CheckMAC(got.m, got.raw, acquirer.MACUnionPayECB, acquirer.MACKey(clean.mak, false)) == nil {
						t.Fatalf("%s: field 64 %X verifies", mg.kind, mac)
					}
				case hostsim.WrongRC:
					if got.rc() != "A1" {
						t.Fatalf("%s: RC %s", mg.kind, got.rc())
					}
				case hostsim.BrokenF62:
					w, g := want.f62(), got.f62()
					if len(w) > 0 && len(g) != max(1, len(w)-5) || len(w) == 0 && len(g) != 3 {
						t.Fatalf("%s: 62 of %d bytes, the good answer's %d", mg.kind, len(g), len(w))
					}
				}
			}
		})
	}
}

func TestParseFaultInstallKinds(t *testing.T) {
	for in, want := range map[string]struct {
		kind string
		f    hostsim.Fault
	}{
		"settle=wrong-rc:96":      {hostsim.KindSettle, hostsim.Fault{Action: hostsim.WrongRC, RC: "96"}},
		"capk-download=broken-62": {hostsim.KindCAPKDownload, hostsim.Fault{Action: hostsim.BrokenF62}},
		"ic-end=no-answer*2":      {hostsim.KindICEnd, hostsim.Fault{Action: hostsim.NoAnswer, Times: 2}},
		"batch-end=wrong-mac*-1":  {hostsim.KindBatchEnd, hostsim.Fault{Action: hostsim.WrongMAC, Times: -1}},
		"status=wrong-rc":         {hostsim.KindStatus, hostsim.Fault{Action: hostsim.WrongRC}},
		"params-end=delay:1s":     {hostsim.KindParamsEnd, hostsim.Fault{Action: hostsim.Delay, Delay: time.Second}},
	} {
		kind, got, err := hostsim.ParseFault(in)
		if err != nil || kind != want.kind || got != want.f {
			t.Errorf("%s: %s %+v %v", in, kind, got, err)
		}
	}
	for _, bad := range []string{"settle=wrong-rc:9", "settle=broken-62:x", "settle=no-answer:1s", "capk=no-answer"} {
		if _, _, err := hostsim.ParseFault(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
