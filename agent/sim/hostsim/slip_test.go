package hostsim_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// slipPrinter lays each receipt out as paper shows it (receipt.Copies and
// receipt.Text, what the real printers print) and keeps the text.
type slipPrinter struct {
	mu    sync.Mutex
	kinds []string
	texts []string
}

func (p *slipPrinter) PrintReceipt(_ context.Context, r provisioning.Receipt) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range receipt.Copies(r) {
		p.kinds = append(p.kinds, r.Kind)
		p.texts = append(p.texts, receipt.Text(s, 32))
	}
	return nil
}

// Field 44 of the simulator's answers, parsed by the real client, reaches
// the slips of the install: the sale's and the void's copies print the
// issuer and acquirer the host is configured with, and the void's copies
// the sale's STAN and RRN as 原凭证号 and 原参考号.
func TestSlipsShowField44(t *testing.T) {
	for _, tc := range []struct{ issuer, acquirer string }{
		{"", ""}, // the defaults
		{"03080000", "49450000"},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			e := newEnv(t, func(c *hostsim.Config) { c.Issuer, c.Acquirer = tc.issuer, tc.acquirer }, nil)
			wantIssuer, wantAcq := tc.issuer, tc.acquirer
			if wantIssuer == "" {
				wantIssuer, wantAcq = hostsim.DefaultIssuer, hostsim.DefaultAcquirer
			}
			f := e.flow(t, luhnCard(), &provisioningtest.Store{}, &installer{})
			p := &slipPrinter{}
			f.Printer = p
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cp, err := f.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Step != provisioning.StepLive || cp.Sale == nil || cp.Void == nil {
				t.Fatalf("checkpoint %+v", cp)
			}
			if got := strings.Join(p.kinds, " "); got != "sale sale void void" {
				t.Fatalf("printed %s, want both copies of the sale's slip, then of the void's", got)
			}
			for i, text := range p.texts {
				want := []string{
					fmt.Sprintf("发卡行 ISSUER:%*s\n", 32-14, wantIssuer),
					fmt.Sprintf("收单行 ACQUIRER:%*s\n", 32-16, wantAcq),
				}
				if p.kinds[i] == "void" {
					want = append(want, "撤销 VOID\n",
						fmt.Sprintf("凭证号 VOUCHER NO.:       %06d\n", cp.Void.STAN),
						fmt.Sprintf("参考号 REFER NO.:   %s\n", cp.Void.RRN),
						fmt.Sprintf("原凭证号 ORIG TRACE:      %06d\n", cp.Sale.STAN),
						fmt.Sprintf("原参考号 ORIG REF:  %s\n", cp.Sale.RRN))
				}
				for _, w := range want {
					if !strings.Contains(text, w) {
						t.Errorf("%s slip lacks %q:\n%s", p.kinds[i], w, text)
					}
				}
				if strings.Contains(text, "UNIONPAY") {
					t.Errorf("%s slip names UnionPay as a bank:\n%s", p.kinds[i], text)
				}
			}
			if cp.Void.RRN == cp.Sale.RRN {
				t.Errorf("the void has the sale's RRN %s", cp.Sale.RRN)
			}
		})
	}
}

// On the wire, field 44 of an approved sale is the two codes space padded
// to 11 characters each (the Centerm app's BaseField44); a declined sale
// names none.
func TestField44OnTheWire(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	resp := e.raw(e.rawSale(e.nextSTAN(), card.PAN.Reveal()))
	if rc, f44 := acquirer.Get(resp, 39), acquirer.Get(resp, 44); rc != "00" || f44 != "01040000   48020000   " {
		t.Fatalf("approved sale: rc %s, field 44 %q", rc, f44)
	}
	m := e.rawSale(e.nextSTAN(), card.PAN.Reveal())
	e.set(m, 4, "000000000151") // the default decline rule: 51
	if resp := e.raw(m); acquirer.Get(resp, 39) != "51" || acquirer.Get(resp, 44) != "" {
		t.Fatalf("declined sale: rc %s, field 44 %q", acquirer.Get(resp, 39), acquirer.Get(resp, 44))
	}
}

// An institution code field 44 cannot carry is refused at start.
func TestField44Config(t *testing.T) {
	for _, code := range []string{"012345678901", "0104\x1b0000", "中国银行"} {
		l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = hostsim.New(hostsim.Config{TMK: key(t, tmkHex), Ledger: l, Issuer: code})
		l.Close()
		if !errors.Is(err, hostsim.ErrConfig) {
			t.Errorf("issuer %q: %v, want ErrConfig", code, err)
		}
	}
}
