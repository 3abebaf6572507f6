package provisioning_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// FuzzDecodeCheckpoint: the state file's decoder never panics, refuses what
// it cannot trust with ErrCorruptState, and what it accepts encodes to a
// checkpoint that decodes and encodes again to the same bytes. The store
// that drops the account check next to a bound card takes any bytes too.
func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add([]byte(`{"schema":1,"step":"selftest","attempt":0,"boot":1,"updated_at":"2026-11-27T10:00:00Z","stan":0}`))
	f.Add([]byte(`{"schema":1,"step":"bind-card","merchant":{"mid":"898310048990001","name":"x","legal_person":"ZHANG SAN","account_check":"16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318","card_type":"debit"}}`))
	f.Add([]byte(`{"schema":1,"step":"test-sale","card":{"masked":"622202*********0128","name":"ZHANG/SAN","type":"debit","expiry":"3012"},"merchant":{"account_check":"ab"},"in_flight":{"kind":"sale","stan":2,"sealed_pan":"AAEC"}}`))
	f.Add([]byte(`{"schema":1,"step":"needs-attention"}`))
	f.Add([]byte(`{"schema":1,"step":"needs-attention","failure":{"step":"bind-card","code":"E_EXPIRED"}}`))
	f.Add([]byte(`{"schema":1,"step":"test-sale","attempt":2,"in_flight":{"kind":"sale","stan":3}}`))
	f.Add([]byte(`{"schema":2,"step":"live"}`))
	f.Add([]byte(`{"schema":1,"step":"nowhere"}`))
	f.Add([]byte(``))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := provisioning.Decode(b)
		st := &provisioningtest.Store{}
		if serr := provisioning.ForgetAccountCheck(st).Save(b); serr != nil {
			t.Fatalf("ForgetAccountCheck save: %v", serr)
		}
		if err != nil {
			if !errors.Is(err, provisioning.ErrCorruptState) {
				t.Fatalf("error %v does not wrap ErrCorruptState", err)
			}
			return
		}
		if !cp.Step.Valid() {
			t.Fatalf("accepted step %q", cp.Step)
		}
		once, err := cp.Encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		cp2, err := provisioning.Decode(once)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, once)
		}
		twice, err := cp2.Encode()
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("not stable:\n%s\n%s", once, twice)
		}
		if cp.Card != nil && cp.Merchant != nil {
			saved, _ := st.Load()
			if c, err := provisioning.Decode(saved); err != nil || c.Merchant.AccountCheck != "" {
				t.Fatalf("saved next to a bound card: %v %q", err, c.Merchant.AccountCheck)
			}
		}
	})
}
