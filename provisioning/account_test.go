package provisioning_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// savesStore records every checkpoint written through it.
type savesStore struct {
	provisioning.Store
	saves [][]byte
}

func (s *savesStore) Save(b []byte) error {
	s.saves = append(s.saves, append([]byte(nil), b...))
	return s.Store.Save(b)
}

// TestCheckpointNeverHoldsCheckNextToCard: through ForgetAccountCheck, no
// checkpoint written during an install holds the account check value and
// the masked card together, and none after the card is bound holds the
// check at all; no status report carries it either.
func TestCheckpointNeverHoldsCheckNextToCard(t *testing.T) {
	r := newRig()
	rec := &savesStore{Store: r.store}
	f := r.flow()
	f.Store = provisioning.ForgetAccountCheck(rec)
	check := merchant().AccountCheck
	cp, err := f.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %s, %v", cp.Step, err)
	}
	sawCheck, sawCard := false, false
	for i, b := range rec.saves {
		c, err := provisioning.Decode(b)
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
		hasCheck := strings.Contains(string(b), check)
		sawCheck = sawCheck || hasCheck
		if c.Card != nil {
			sawCard = true
			if hasCheck {
				t.Fatalf("save %d (%s) holds the account check next to card %s:\n%s", i, c.Step, c.Card.Masked, b)
			}
		}
	}
	if !sawCheck || !sawCard {
		t.Fatalf("saw check %v, card %v: the test did not see both phases", sawCheck, sawCard)
	}
	for _, s := range r.reporter.statuses {
		b, _ := json.Marshal(s)
		if strings.Contains(string(b), check) {
			t.Fatalf("status %s/%s carries the account check", s.Step, s.State)
		}
	}
}

// TestAccountCheckSurvivesPowerCutInBindCard: a power cut after the
// checkpoint of bind-card (the step's own save, before the card is read)
// resumes at bind-card with the check still there, and binds.
func TestAccountCheckSurvivesPowerCutInBindCard(t *testing.T) {
	r := newRig()
	rec := &savesStore{Store: r.store}
	f := r.flow()
	f.Store = provisioning.ForgetAccountCheck(rec)
	if _, err := f.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var image []byte
	for _, b := range rec.saves {
		if c, _ := provisioning.Decode(b); c.Step == provisioning.StepBindCard {
			image = b
			break
		}
	}
	if image == nil {
		t.Fatal("no checkpoint of bind-card")
	}
	again := newRig()
	again.store.Data = image
	again.downloads.Data = r.downloads.Bytes()
	f = again.flow()
	f.Store = provisioning.ForgetAccountCheck(again.store)
	cp, err := f.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("resumed run = %s, %v", cp.Step, err)
	}
	if cp.Card == nil || strings.Contains(string(again.store.Data), merchant().AccountCheck) {
		t.Fatalf("after the resumed bind: card %v, check still stored", cp.Card)
	}
}

// TestForgetAccountCheckLeavesOtherBytes: a checkpoint without a bound card,
// or one that is not a checkpoint, is saved as given.
func TestForgetAccountCheckLeavesOtherBytes(t *testing.T) {
	rec := &savesStore{Store: newRig().store}
	s := provisioning.ForgetAccountCheck(rec)
	for _, b := range []string{`{"schema":1,"step":"bind-card","merchant":{"account_check":"ab"}}`, `not json`, ``} {
		if err := s.Save([]byte(b)); err != nil {
			t.Fatal(err)
		}
		if got := string(rec.saves[len(rec.saves)-1]); got != b {
			t.Errorf("saved %q as %q", b, got)
		}
	}
}
