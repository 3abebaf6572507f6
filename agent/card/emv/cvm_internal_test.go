package emv

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

type stubPad struct {
	n     int
	block provisioning.PINBlock
	err   error
}

func (p *stubPad) OnlinePIN(context.Context, provisioning.PINRequest) (provisioning.PINBlock, error) {
	p.n++
	return p.block, p.err
}

// TestVerifyCardholder walks CVM lists rule by rule (EMV Book 3 §10.5):
// conditions, the "apply succeeding rule" bit, unsupported and
// unrecognised methods, and what each outcome leaves in 9F34, TVR byte 3
// and TSI byte 1.
func TestVerifyCardholder(t *testing.T) {
	block := provisioning.PINBlock{0x04, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	const noAmounts = "0000000000000000"
	for _, tc := range []struct {
		name   string
		aip    string // 82; empty = 7C00 (CV supported)
		list   string // 8E hex; "-" = absent
		amount int64
		txType byte
		appCur string // 9F42, empty = absent
		pad    *stubPad
		cvm    string // 9F34
		tvr3   byte
		tsiCV  bool
		pin    bool
		asked  int
	}{
		{name: "online PIN entered", list: noAmounts + "0200", pad: &stubPad{block: block},
			cvm: "020000", tvr3: tvrOnlinePIN, tsiCV: true, pin: true, asked: 1},
		{name: "no PIN pad fails online PIN", list: noAmounts + "0200",
			cvm: "020001", tvr3: tvrCVFailed | tvrNoPINPad, tsiCV: true},
		{name: "PIN bypassed", list: noAmounts + "0200", pad: &stubPad{err: provisioning.ErrPINBypassed},
			cvm: "020001", tvr3: tvrCVFailed | tvrPINNotEntered, tsiCV: true, asked: 1},
		{name: "broken pad is a pad not working", list: noAmounts + "0200", pad: &stubPad{err: errors.New("tamper")},
			cvm: "020001", tvr3: tvrCVFailed | tvrNoPINPad, tsiCV: true, asked: 1},
		{name: "short block is a pad not working", list: noAmounts + "0200", pad: &stubPad{block: block[:4]},
			cvm: "020001", tvr3: tvrCVFailed | tvrNoPINPad, tsiCV: true, asked: 1},
		{name: "bypass then signature", list: noAmounts + "4203" + "1E03", pad: &stubPad{err: provisioning.ErrPINBypassed},
			cvm: "1E0300", tvr3: tvrPINNotEntered, tsiCV: true, asked: 1},
		{name: "no pad then no CVM", list: noAmounts + "4200" + "1F00",
			cvm: "1F0002", tvr3: tvrNoPINPad, tsiCV: true},
		{name: "offline PIN unsupported, next", list: noAmounts + "4100" + "1E00",
			cvm: "1E0000", tsiCV: true},
		{name: "offline PIN unsupported, stop", list: noAmounts + "0400" + "1E00",
			cvm: "3F0001", tvr3: tvrCVFailed, tsiCV: true},
		{name: "condition 03 skips unsupported offline PIN", list: noAmounts + "0103" + "1F03",
			cvm: "1F0302", tsiCV: true},
		{name: "unrecognised CVM, next", list: noAmounts + "7500" + "1F00",
			cvm: "1F0002", tvr3: tvrUnrecognisedCV, tsiCV: true},
		{name: "fail CVM", list: noAmounts + "0000" + "1F00",
			cvm: "000001", tvr3: tvrCVFailed, tsiCV: true},
		{name: "unknown condition passed over", list: noAmounts + "1F0A" + "1E00",
			cvm: "1E0000", tsiCV: true},
		{name: "no condition holds", list: noAmounts + "1F01" + "1F05",
			cvm: "3F0001", tvr3: tvrCVFailed, tsiCV: true},
		{name: "cashback rule for a cashback", list: noAmounts + "1F05" + "1E00", txType: 0x09,
			cvm: "1F0502", tsiCV: true},
		{name: "rule 02 does not hold for cash", list: noAmounts + "1F02" + "1E00", txType: 0x01,
			cvm: "1E0000", tsiCV: true},
		// X = 100.00 (10000 fen), Y = 500.00.
		{name: "under X", list: "00002710" + "0000C350" + "1F06" + "1E00", amount: 9999, appCur: "0156",
			cvm: "1F0602", tsiCV: true},
		{name: "not under X", list: "00002710" + "0000C350" + "1F06" + "1E00", amount: 10000, appCur: "0156",
			cvm: "1E0000", tsiCV: true},
		{name: "over Y", list: "00002710" + "0000C350" + "1F09" + "1E00", amount: 50001, appCur: "0156",
			cvm: "1F0902", tsiCV: true},
		{name: "over X in another currency", list: "00002710" + "0000C350" + "1F07" + "1E00", amount: 99999, appCur: "0840",
			cvm: "1E0000", tsiCV: true},
		{name: "amount rule without application currency", list: "00002710" + "0000C350" + "1F08" + "1E00", amount: 1,
			cvm: "1E0000", tsiCV: true},
		{name: "list absent", list: "-", cvm: "3F0000"},
		{name: "list without rules", list: noAmounts, cvm: "3F0000"},
		{name: "card without cardholder verification", aip: "6C00", list: noAmounts + "0200", cvm: "3F0000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newSession(nil, Terminal{}, Transaction{Amount: tc.amount, Type: tc.txType})
			if err != nil {
				t.Fatal(err)
			}
			aip := tc.aip
			if aip == "" {
				aip = "7C00"
			}
			s.cdata[0x82], _ = hex.DecodeString(aip)
			if tc.list != "-" {
				s.cdata[0x8E], _ = hex.DecodeString(tc.list)
			}
			if tc.appCur != "" {
				s.cdata[0x9F42], _ = hex.DecodeString(tc.appCur)
			}
			var pad provisioning.PINPad
			if tc.pad != nil {
				pad = tc.pad
			}
			pin, err := s.verifyCardholder(context.Background(), pad, provisioning.PINRequest{Amount: tc.amount})
			if err != nil {
				t.Fatal(err)
			}
			if got := Hex(s.tdata[0x9F34]); got != tc.cvm {
				t.Errorf("9F34 %s, want %s", got, tc.cvm)
			}
			if got := s.tdata[0x95][2]; got != tc.tvr3 {
				t.Errorf("TVR byte 3 %02X, want %02X", got, tc.tvr3)
			}
			if got := s.tdata[0x9B][0]&tsiCVPerformed != 0; got != tc.tsiCV {
				t.Errorf("TSI cardholder verification performed %v, want %v", got, tc.tsiCV)
			}
			if (pin != nil) != tc.pin {
				t.Errorf("PIN block %v, want one: %v", pin, tc.pin)
			}
			if tc.pad != nil && tc.pad.n != tc.asked {
				t.Errorf("PIN pad asked %d times, want %d", tc.pad.n, tc.asked)
			}
		})
	}
}

// A CVM list of an odd length is card data the terminal cannot read; a
// cancelled PIN entry stops the payment instead of failing the CVM.
func TestVerifyCardholderErrors(t *testing.T) {
	s, _ := newSession(nil, Terminal{}, Transaction{Amount: 1})
	s.cdata[0x82], s.cdata[0x8E] = []byte{0x7C, 0x00}, make([]byte, 11)
	if _, err := s.verifyCardholder(context.Background(), nil, provisioning.PINRequest{}); !errors.Is(err, ErrCardData) {
		t.Errorf("odd CVM list: %v", err)
	}
	s, _ = newSession(nil, Terminal{}, Transaction{Amount: 1})
	s.cdata[0x82], s.cdata[0x8E] = []byte{0x7C, 0x00}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.verifyCardholder(ctx, &stubPad{err: context.Canceled}, provisioning.PINRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled PIN entry: %v", err)
	}
	// The cardholder's CANCEL at the pad stops the payment too; it does not
	// fail the CVM and go on to the list's next rule.
	s, _ = newSession(nil, Terminal{}, Transaction{Amount: 1})
	s.cdata[0x82], s.cdata[0x8E] = []byte{0x7C, 0x00}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x00, 0x1F, 0x00}
	if _, err := s.verifyCardholder(context.Background(), &stubPad{err: provisioning.ErrPINCancelled}, provisioning.PINRequest{}); !errors.Is(err, provisioning.ErrPINCancelled) {
		t.Errorf("PIN entry cancelled at the pad: %v", err)
	}
}
