package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/central/report/deliverytest"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/rig"
	"github.com/posagent/posagent/provisioning"
)

// maxStarts bounds the restarts of one install: a flow that needs more than
// this to go live after at most maxKills power cuts is stuck, not unlucky.
const (
	maxKills  = 3
	maxStarts = 10
)

// hostLatency delays every host answer, after the host has booked the
// request: the window where a power cut leaves the host with a sale or void
// the terminal never heard of, which only a reversal repairs. On loopback it
// would be a few microseconds wide and random kills would almost never land
// in it; a real acquirer link takes hundreds of milliseconds.
const hostLatency = 30 * time.Millisecond

// Every kind is delayed, the downloads, settlement and sign-off too: a
// kill must be able to land after the host booked a download's end or
// closed the batch and before the terminal heard of it.
func hostFaults() map[string]hostsim.Fault {
	f := hostsim.Fault{Action: hostsim.Delay, Delay: hostLatency, Times: -1}
	m := map[string]hostsim.Fault{}
	for _, k := range hostsim.Kinds {
		m[k] = f
	}
	return m
}

// TestCrashCampaign runs CRASH_N fresh installs (CRASH_SEED fixes the random
// kill plan, to replay a failure). In each, the agent is SIGKILLed 1 to 3
// times, each kill either after a random delay (uniform over the measured
// duration of an uncrashed install: it can land anywhere, including inside
// a card APDU, a host exchange or a printer write) or at a random pause
// point (right after a step's checkpoint was written and reported), then
// restarted until it is live.
func TestCrashCampaign(t *testing.T) {
	n, _, rng := startCampaign(t, "crash campaign", "CRASH_N", "CRASH_SEED", "make crashtest CRASH_N=100")

	start := time.Now()
	bin := rig.Build(t)
	// One card for the whole campaign: the card keeps no per-install state
	// the host cares about (each install has a fresh host and ledger), and
	// re-plugging would cost a pcscd poll per install.
	rig.PlugCardHook(t, "debit", func(step string) { moments.see("card:" + step) })

	flow := calibrate(t, bin)
	t.Logf("uncrashed install on these devices: %v; kill delays are drawn from [0, %v)", flow.Round(time.Millisecond), flow.Round(time.Millisecond))

	points := realPausePoints()

	campaign := time.Now()
	var kills, starts, failed, reversals, operator int
	at := map[provisioning.Step]int{}
	after := map[string]int{}
	for i := 1; i <= n; i++ {
		var res result
		ok := t.Run(fmt.Sprintf("install%03d", i), func(t *testing.T) {
			res = install(t, bin, rng, flow, points)
		})
		kills += res.kills
		reversals += res.reversals
		operator += res.operator
		for st, c := range res.at {
			at[st] += c
		}
		for k, c := range res.after {
			after[k] += c
		}
		starts += res.starts
		if !ok {
			failed++
		}
	}
	var hit []string
	for _, st := range append([]provisioning.Step{"(none yet)"}, provisioning.Steps...) {
		if at[st] > 0 {
			hit = append(hit, fmt.Sprintf("%s=%d", st, at[st]))
		}
	}
	t.Logf("kills by checkpoint left: %s; host reversals: %d; operator clears: %d", strings.Join(hit, " "), reversals, operator)
	t.Logf("kills by the host's last answer before them: %s", formatKinds(after))
	t.Logf("crash campaign: %d installs, %d SIGKILLs, %d agent starts, %d failed; campaign %v, total with build and calibration %v",
		n, kills, starts, failed, time.Since(campaign).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// startCampaign reads a campaign's size from the environment variable nVar,
// skipping the test (how says how to run it) when it is not a positive
// number, and its seed from seedVar, drawn when unset and logged either way
// so that a run replays; it takes the PC/SC lock for the whole campaign.
func startCampaign(t *testing.T, name, nVar, seedVar, how string) (n int, seed uint64, rng *rand.Rand) {
	t.Helper()
	n, err := strconv.Atoi(os.Getenv(nVar))
	if err != nil || n < 1 {
		t.Skipf("set %s to run the %s (%s)", nVar, name, how)
	}
	seed = uint64(time.Now().UnixNano())
	if s := os.Getenv(seedVar); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", seedVar, err)
		}
	}
	bench.NeedPCSC(t)
	t.Logf("%s: N=%d %s=%d", name, n, seedVar, seed)
	return n, seed, rand.New(rand.NewPCG(seed, seed>>1|1))
}

// realPausePoints are the pause points that exist with real devices: a
// step's start (the flow's reporter) and the parameter download (the
// simulated TMS); the card, host and printer points belong to the simulated
// devices.
func realPausePoints() []string {
	var points []string
	for _, p := range inproc.Points() {
		if strings.HasPrefix(p, "enter:") && p != "enter:"+string(provisioning.StepLive) || p == "params.load" {
			points = append(points, p)
		}
	}
	return points
}

// calibrate runs three installs without kills and returns the shortest
// duration: kill delays drawn from a longer one would often fire after the
// install already ended, and that install would then see no kill at all.
func calibrate(t *testing.T, bin string) time.Duration {
	var shortest time.Duration
	for i := 1; i <= 3; i++ {
		t.Run(fmt.Sprintf("calibrate%d", i), func(t *testing.T) {
			r := rig.New(t, rig.Options{MQTT: true, Faults: hostFaults()})
			a := r.StartAgent(t, bin, "calibrate")
			select {
			case <-a.Done:
			case <-time.After(2 * time.Minute):
				t.Fatal("uncrashed install did not end within 2 min")
			}
			d := time.Since(a.Started)
			if !a.State.Success() || !strings.Contains(a.Stdout(), "step| live") {
				t.Fatalf("uncrashed install: %v\n%s", a.State, a.Stdout())
			}
			if shortest == 0 || d < shortest {
				shortest = d
			}
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	return shortest
}

// chipMoments are the moments inside a chip sale a kill is aimed at: the
// card computing its first cryptogram (the sale not yet sent), the host
// answering the sale (booked, the answer not yet written), and the card
// given the second GENERATE AC (the approval heard, the card's verdict not).
var chipMoments = []string{"card:generate_ac", "host:sale", "card:generate_ac2"}

// moments fires the armed moment once, for the card's step hook (plugged
// once per campaign) and the host's answer hook (one per install). The
// hook waits until the kill is done (killed), so the card's or the host's
// answer never leaves before the terminal is gone.
var moments momentTrigger

type momentTrigger struct {
	mu    sync.Mutex
	want  string
	fired chan time.Time
	done  chan struct{}
}

// arm returns a channel that receives once when moment m next happens;
// arm("") disarms.
func (m *momentTrigger) arm(moment string) <-chan time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done != nil {
		close(m.done) // a hook still waiting goes on
	}
	m.want, m.fired, m.done = moment, make(chan time.Time, 1), make(chan struct{})
	return m.fired
}

// killed releases the hook that fired.
func (m *momentTrigger) killed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done != nil {
		close(m.done)
		m.done = nil
	}
}

func (m *momentTrigger) see(moment string) {
	m.mu.Lock()
	if m.want == "" || m.want != moment {
		m.mu.Unlock()
		return
	}
	m.want = ""
	m.fired <- time.Now()
	done := m.done
	m.mu.Unlock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

type result struct {
	kills, starts int
	// operator counts the operator's clears an install needed.
	operator int
	// at counts kills by the checkpoint they left: which steps were hit;
	// after by the last message kind the host answered before the kill.
	at        map[provisioning.Step]int
	after     map[string]int
	reversals int
}

// install is one fresh install, crashed and restarted until live, then
// checked.
func install(t *testing.T, bin string, rng *rand.Rand, flow time.Duration, points []string) (res result) {
	res.at, res.after = map[provisioning.Step]int{}, map[string]int{}
	var last lastAnswer
	r := rig.New(t, rig.Options{MQTT: true, Faults: hostFaults(), OnAnswer: func(kind string) {
		last.set(kind)
		moments.see("host:" + kind)
	}})
	want := 1 + rng.IntN(maxKills)
	var plan []string
	var keys []string // the next start's key script: an operator's clear
	live := false
	for !live {
		res.starts++
		if res.starts > maxStarts {
			t.Fatalf("not live after %d starts (%s)", maxStarts, strings.Join(plan, ", "))
		}
		name := fmt.Sprintf("start%02d", res.starts)
		var a *rig.Agent
		var killAt <-chan time.Time
		how := ""
		extra := keys
		keys = nil
		switch {
		case res.kills >= want:
			a = r.StartAgent(t, bin, name, extra...)
		case rng.IntN(3) == 0:
			m := chipMoments[rng.IntN(len(chipMoments))]
			how = "at " + m
			killAt = moments.arm(m)
			a = r.StartAgent(t, bin, name, extra...)
		case rng.IntN(2) == 0:
			d := time.Duration(rng.Int64N(int64(flow)))
			how = "delay " + d.Round(time.Millisecond).String()
			a = r.StartAgent(t, bin, name, extra...)
			timer := time.NewTimer(d)
			defer timer.Stop()
			killAt = timer.C
		default:
			p := points[rng.IntN(len(points))]
			how = "pause " + p
			a = r.StartAgent(t, bin, name, append(extra, "--pause-at", p)...)
		}
		killed := false
		select {
		case <-a.Done:
		case <-killAt:
			killed = a.Kill()
			moments.killed()
		case <-a.Paused:
			killed = a.Kill()
		case <-time.After(2 * time.Minute):
			a.Kill()
			t.Fatalf("%s: agent neither ended nor paused within 2 min", name)
		}
		moments.arm("") // a moment that never came is not for the next start
		answered := last.take()
		cp, err := checkpoint(r.State)
		if err != nil {
			t.Fatalf("%s: after %s the state file does not parse: %v", name, how, err)
		}
		switch {
		case killed:
			res.kills++
			res.at[cp.Step]++
			res.after[answered]++
			plan = append(plan, fmt.Sprintf("kill %s (checkpoint %s, after %s)", how, cp.Step, answered))
		case a.State.Success() && strings.Contains(a.Stdout(), "step| live"):
			live = true
			if how != "" {
				how = " (planned " + how + ", ended first)"
			}
			plan = append(plan, "live"+how)
		case cp.Step == provisioning.StepNeedsAttention && cp.Failure != nil && provisioning.OperatorOnly(cp.Failure.Code) && len(cp.Unreversed) > 0:
			// Power cuts in every try of one reversal use up its tries:
			// the terminal gives up and stops for an operator, as it must.
			// The operator's procedure: the acquirer cancels the message by
			// hand, then a supervisor clears it (F2 on the sim keypad).
			res.operator++
			u := cp.Unreversed[0]
			booked, err := r.Host.CancelByHand(rig.TID, u.Batch, u.STAN)
			if err != nil {
				t.Fatal(err)
			}
			plan = append(plan, fmt.Sprintf("operator: %s %s %06d cancelled by hand (host had it: %v), cleared", cp.Failure.Code, u.Kind, u.STAN, booked))
			keys = []string{"--keys", "F2 ENTER"}
		default:
			// A run that stops by itself is an install the installer would
			// have to look at: after a power cut that is a bug.
			t.Fatalf("%s: agent exited %v without going live (after %s); stdout:\n%s\nlog:\n%s", name, a.State, strings.Join(plan, ", "), a.Stdout(), a.Stderr())
		}
	}

	// Invariants, each printed.
	cp, err := checkpoint(r.State)
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("final checkpoint %v (%v), want live", cp.Step, err)
	}
	book, reversals := checkLedger(t, r.Ledger, cp)
	res.reversals = reversals
	entries, err := ledger.Read(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	procedure := checkProcedure(t, r.State, cp, entries)
	events := checkEvents(t, r.Monitor)
	secrets := checkSecrets(t, r)
	t.Logf("kills=%d starts=%d [%s] | live: ok | ledger: %s | procedure: %s | events: %s | state: ok | secrets: %s",
		res.kills, res.starts, strings.Join(plan, "; "), book, procedure, events, secrets)
	return res
}

// checkpoint decodes the state file; a missing one is fine only before the
// first checkpoint (a kill before selftest was written): it says "fresh".
func checkpoint(state string) (provisioning.Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(state, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return provisioning.Checkpoint{Step: "(none yet)"}, nil
	}
	if err != nil {
		return provisioning.Checkpoint{}, err
	}
	return provisioning.Decode(b)
}

// checkLedger: every approved sale is undone (by a void that was not itself
// reversed, or by its own reversal), nothing is reversed twice, and the
// void the checkpoint records is on the host.
func checkLedger(t *testing.T, path string, cp provisioning.Checkpoint) (string, int) {
	t.Helper()
	entries, err := ledger.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	saleSTAN := -1
	if cp.Sale != nil {
		saleSTAN = cp.Sale.STAN
	}
	problems, summary, reversals := ledgerProblems(entries, saleSTAN)
	for _, p := range problems {
		t.Error("ledger: " + p)
	}
	if len(problems) > 0 {
		return "FAIL", reversals
	}
	return "ok " + summary, reversals
}

// ledgerProblems applies the ledger invariants to the host's entries;
// saleSTAN is the test sale the final checkpoint records, which must have an
// effective void.
func ledgerProblems(entries []ledger.Entry, saleSTAN int) (problems []string, summary string, reversals int) {
	problems, summary, reversals = undoProblems(entries, nil)
	voided := false
	for _, e := range entries {
		voided = voided || e.Event == ledger.EventVoided && e.OrigSTAN == saleSTAN && !isReversed(entries, e)
	}
	if !voided {
		problems = append(problems, fmt.Sprintf("the checkpoint's test sale %06d has no effective void on the host", saleSTAN))
	}
	return problems, summary, reversals
}

// txnKey names a host transaction: kind, batch and STAN.
type txnKey struct {
	kind, batch string
	stan        int
}

func keyOf(e ledger.Entry) txnKey { return txnKey{e.Kind, e.Batch, e.STAN} }

func isReversed(entries []ledger.Entry, e ledger.Entry) bool {
	for _, x := range entries {
		if x.Event == ledger.EventReversed && keyOf(x) == keyOf(e) {
			return true
		}
	}
	return false
}

// undoProblems is the money invariant on the host's entries: every approved
// sale is undone exactly once — by its reversal or by one void that was not
// itself reversed, not both — and nothing is reversed twice. A sale that is
// not undone is a problem unless left says the operator was handed it (the
// agent stopped naming it for the acquirer to cancel by hand); nil leaves
// none.
func undoProblems(entries []ledger.Entry, left func(ledger.Entry) bool) (problems []string, summary string, reversals int) {
	reversed := map[txnKey]int{}
	var order []txnKey
	for _, e := range entries {
		if e.Event == ledger.EventReversed {
			if reversed[keyOf(e)] == 0 {
				order = append(order, keyOf(e))
			}
			reversed[keyOf(e)]++
		}
	}
	for _, k := range order {
		if c := reversed[k]; c > 1 {
			problems = append(problems, fmt.Sprintf("%s %s/%06d reversed %d times", k.kind, k.batch, k.stan, c))
		}
	}
	voidedBy := map[txnKey]int{} // sale → voids of it that were not reversed
	voids := 0
	for _, e := range entries {
		if e.Event == ledger.EventVoided && reversed[keyOf(e)] == 0 {
			voidedBy[txnKey{ledger.KindSale, e.Batch, e.OrigSTAN}]++
			voids++
		}
	}
	sales, rev, handed := 0, 0, 0
	for _, e := range entries {
		if e.Event != ledger.EventApproved || e.Kind != ledger.KindSale {
			continue
		}
		sales++
		k := keyOf(e)
		switch r, v := reversed[k] > 0, voidedBy[k]; {
		case r && v > 0:
			problems = append(problems, fmt.Sprintf("sale %s/%06d both voided and reversed: undone twice", e.Batch, e.STAN))
		case v > 1:
			problems = append(problems, fmt.Sprintf("sale %s/%06d voided %d times", e.Batch, e.STAN, v))
		case r:
			rev++
		case v == 1:
		case left != nil && left(e):
			handed++
		default:
			problems = append(problems, fmt.Sprintf("sale %s/%06d approved and neither voided nor reversed: the card stays charged", e.Batch, e.STAN))
		}
	}
	summary = fmt.Sprintf("(%d sales approved, %d reversed, %d voided, %d reversals in all", sales, rev, voids, len(reversed))
	if handed > 0 {
		summary += fmt.Sprintf(", %d left to the operator", handed)
	}
	return problems, summary + ")", len(reversed)
}

// checkEvents checks that the monitor saw every event seq from 1 to the
// last, which is the live event, in order after dropping duplicates (QoS 1
// redelivery, replay after a restart), as docs/mqtt.md promises.
func checkEvents(t *testing.T, m *rig.Monitor) string {
	t.Helper()
	evs, err := monitorEvents(t, m)
	if err != nil {
		t.Fatalf("monitor: %v", err)
	}
	problems, last, dups := seqProblems(evs, provisioning.StateLive)
	for _, p := range problems {
		t.Error("monitor: " + p)
	}
	if len(problems) > 0 {
		return "FAIL"
	}
	return fmt.Sprintf("ok (seq 1..%d in order, %d messages, %d duplicates dropped)", last, len(evs), dups)
}

// monitorEvents waits until the monitor holds every event the agent got
// acknowledged and returns them in arrival order.
func monitorEvents(t *testing.T, m *rig.Monitor) ([]report.Message, error) {
	t.Helper()
	events := mqtt.EventsTopic(rig.TID)
	parse := func(msg rig.Message) (report.Message, bool) {
		var ev report.Message
		if msg.Topic != events {
			return ev, false
		}
		if err := json.Unmarshal([]byte(msg.Payload), &ev); err != nil {
			t.Errorf("monitor: event does not parse: %v", err)
			return ev, false
		}
		return ev, true
	}
	// The agent exited after its reports were acknowledged: once a marker
	// published now comes back, the monitor holds all it will ever get.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := m.Sync(ctx); err != nil {
		return nil, err
	}
	var evs []report.Message
	for _, msg := range m.Messages() {
		if ev, ok := parse(msg); ok {
			evs = append(evs, ev)
		}
	}
	return evs, nil
}

// seqProblems checks events in arrival order against the delivery contract
// (deliverytest: seq 1 onwards, duplicates dropped, no gap, no reordering)
// and that the last event taken is in state final (live, or failed for an
// install that stopped for the operator), the flow's last report (a seq
// missing at the tail would leave another last).
func seqProblems(events []report.Message, final string) (problems []string, last uint64, dups int) {
	l := deliverytest.New(1)
	var lastEvent report.Message
	for _, ev := range events {
		if l.Add(ev.Seq) {
			lastEvent = ev
		}
	}
	problems = l.Problems(l.Last())
	if lastEvent.State != final {
		problems = append(problems, fmt.Sprintf("the last event (seq %d) is %s/%s, not %s", l.Last(), lastEvent.Step, lastEvent.State, final))
	}
	return problems, l.Last(), l.Dups()
}

// checkSecrets greps every file the install left (state dir, slips, agent,
// host and monitor logs, config) and every MQTT payload for the card's PAN
// (which any track 2 data or PAN-bearing field would contain) and the TMK in
// hex. The one file allowed to hold the TMK is the key store it was injected
// into (mode 0600); the config is the campaign's input, not something the
// run wrote (the example config's comment names the simulated card). A PIN
// block is never stored or sent in clear (provisioning.PINBlock cannot be
// marshalled) and the chip test sale enters no PIN, so the PAN and the TMK
// are what a leak would show.
func checkSecrets(t *testing.T, r *rig.Rig) string {
	t.Helper()
	secrets := map[string][]byte{"full PAN": []byte(rig.DebitPAN), "TMK": []byte(strings.ToLower(rig.TMK))}
	files, leaks := 0, 0
	keyStore := filepath.Join(r.State, agent.KeyFile)
	err := filepath.WalkDir(r.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() || p == r.Config {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		low := bytes.ToLower(b)
		for what, s := range secrets {
			if what == "TMK" && p == keyStore {
				continue
			}
			if bytes.Contains(low, s) {
				t.Errorf("secrets: %s holds the %s", p, what)
				leaks++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyStore); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secrets: key store %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	msgs := r.Monitor.Messages()
	for _, m := range msgs {
		low := []byte(strings.ToLower(m.Payload))
		for what, s := range secrets {
			if bytes.Contains(low, s) {
				t.Errorf("secrets: MQTT %s carries the %s", m.Topic, what)
				leaks++
			}
		}
	}
	if leaks > 0 {
		return fmt.Sprintf("FAIL (%d leaks)", leaks)
	}
	return fmt.Sprintf("ok (%d files, %d MQTT payloads)", files, len(msgs))
}
