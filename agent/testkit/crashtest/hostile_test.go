package crashtest

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/config/configtest"
	"github.com/posagent/posagent/agent/sim/devsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/hostile"
	"github.com/posagent/posagent/agent/testkit/rig"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/provisioning"
)

// The hostile-link campaign's bounds.
const (
	// hostTimeout is the agent's host.timeout: the config's minimum, so
	// that a swallowed answer costs a second, not thirty.
	hostTimeout = time.Second
	// passShare of the exchanges go through untouched, so installs
	// progress; each of the others gets one of its kind's mutations.
	passShare = 0.6
	// hostileKills bounds the random SIGKILLs of one install (0 to 2).
	hostileKills = 2
	// maxOperator is how many times the operator's procedure runs for one
	// install before a stop for the operator is its outcome.
	maxOperator = 4
	// maxFailures is how many failures an install may go through, each
	// answered with retry, before it counts as a retry loop. With 40 % of
	// the exchanges attacked a step fails about half the time, a reversal
	// the attacker keeps answering takes up to three failures and an
	// operator's clear before the step is tried again, and an install has
	// four steps on the host: a long but honest install measured here took
	// 13 failures (100 installs, 2026-12-03); a loop never ends, so a bound
	// three times that tells the two apart.
	maxFailures = 40
	// swipeEvery: every third install swipes a magstripe-only card for its
	// sale and void, so tracks travel in fields 35/36.
	swipeEvery = 3
	// hungAfter ends a run that neither ends nor pauses: with a one-second
	// host timeout every run of a sane install is over in seconds.
	hungAfter = time.Minute
)

// swipeCard is the magstripe-only card of the swiped installs: the debit
// chip card's PAN (the settlement card is bound by its chip, and the void
// checks it is the sale's card) with service code 101, so no chip is asked
// for.
var swipeCard = devsim.Profile{PAN: rig.DebitPAN, Name: "ZHANG/SAN", Expiry: "3012", ServiceCode: "101"}

// clearTracks is what a clear track of the test cards looks like on the
// wire: the swiped card's tracks 2 and 3, and the PAN with separator and
// expiry (track 2, and the chip's track-2 equivalent, tag 57).
var clearTracks = newTrackSecrets(rig.DebitPAN, "3012", swipeCard.Tracks()[1], swipeCard.Tracks()[2])

// TestHostileCampaign runs HOSTILE_N fresh installs (HOSTILE_SEED fixes the
// attacker's plan, the kills and the card mode, to replay a failure) on the
// real device stack of agent/testkit/rig with agent/testkit/hostile's proxy between the
// agent and the host simulator. The proxy mutates about 40 % of the
// exchanges; the agent is also SIGKILLed 0 to 2 times per install, after a
// random delay or at a random pause point. The campaign plays the installer:
// a run that stops at needs-attention is started again with a key that
// answers retry (and confirms the card), as long as the failure offers
// retry and the install has not failed maxFailures times. Every third
// install binds the chip card, takes it out and swipes a magstripe-only card
// for the sale and the void.
//
// After each install: (a) money — every sale the host approved is voided
// (by a void not itself reversed) or reversed, exactly once, and nothing is
// reversed twice; (b) order — no sale is booked, and no 0200 sale leaves
// the terminal, while an earlier approved sale is neither reversed nor
// voided; (c) wire — no frame either way holds the card's track data in
// clear, and fields 35/36 go only with field 53 saying encrypted; (d)
// outcome — live, or a stop at a catalogued failure that offers no retry
// (what the operator must resolve), never a retry loop; (e) secrets — the
// crash campaign's check of every file and MQTT payload; and the monitor's
// events are in order and end where the install ended.
func TestHostileCampaign(t *testing.T) {
	n, seed, rng := startCampaign(t, "hostile-link campaign", "HOSTILE_N", "HOSTILE_SEED", "make crashtest MODE=hostile CRASH_N=100")
	// One attacker for the whole campaign: it keeps the sign-on answers of
	// earlier installs to replay (same TMK, so their keys still decrypt).
	attacker := hostile.NewRandom(seed^0x9E3779B97F4A7C15, passShare)
	archive := &hostile.Archive{}

	start := time.Now()
	bin := rig.Build(t)
	remove := rig.InsertCard(t, "debit")
	flow := calibrate(t, bin)
	remove()
	window := flow + 2*hostTimeout
	t.Logf("uncrashed install without an attacker: %v; kill delays are drawn from [0, %v)", flow.Round(time.Millisecond), window.Round(time.Millisecond))
	points := realPausePoints()

	campaign := time.Now()
	var sum hostileResult
	sum.counts = map[hostile.Mutation]int{}
	sum.at, sum.after = map[string]int{}, map[string]int{}
	broken := map[string]int{}
	outcomes := map[string]int{}
	failed := 0
	for i := 1; i <= n; i++ {
		swiped := i%swipeEvery == 0
		var res hostileResult
		ok := t.Run(fmt.Sprintf("install%03d", i), func(t *testing.T) {
			res = hostileInstall(t, bin, rng, window, points, attacker, archive, swiped)
		})
		if !ok {
			failed++
		}
		sum.add(res)
		for _, b := range res.broken {
			broken[b]++
		}
		outcomes[res.end]++
	}
	t.Logf("mutations applied: %s", formatCounts(sum.counts, sum.na))
	t.Logf("outcomes: %s", formatMap(outcomes))
	t.Logf("kills by checkpoint left: %s", formatMap(sum.at))
	t.Logf("kills by the host's last answer before them: %s", formatKinds(sum.after))
	t.Logf("invariants broken (installs): %s", formatMap(broken))
	t.Logf("hostile-link campaign: %d installs (%d swiped), %d failed; %d SIGKILLs, %d card swaps, %d agent starts, %d failures answered, %d operator clears; campaign %v, total with build and calibration %v",
		n, n/swipeEvery, failed, sum.kills, sum.swaps, sum.starts, sum.failures, sum.operator, time.Since(campaign).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

type hostileResult struct {
	kills, swaps, starts, failures int
	operator                       int // the operator's procedures run
	counts                         map[hostile.Mutation]int
	na                             int      // planned mutations that found nothing to work on
	end                            string   // "live", "stop CODE", "retry loop", "FAIL"
	broken                         []string // the invariants this install broke
	// at counts kills by the checkpoint they left, after by the last
	// message kind the host answered before them.
	at, after map[string]int
}

func (s *hostileResult) add(r hostileResult) {
	s.kills += r.kills
	s.swaps += r.swaps
	s.starts += r.starts
	s.failures += r.failures
	s.operator += r.operator
	s.na += r.na
	for m, c := range r.counts {
		s.counts[m] += c
	}
	for k, c := range r.at {
		s.at[k] += c
	}
	for k, c := range r.after {
		s.after[k] += c
	}
}

func formatCounts(c map[hostile.Mutation]int, na int) string {
	var parts []string
	for _, m := range hostile.Mutations {
		if c[m] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", m, c[m]))
		}
	}
	if na > 0 {
		parts = append(parts, fmt.Sprintf("(%d planned found nothing to work on, passed)", na))
	}
	return strings.Join(parts, " ")
}

func formatMap(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// attacks lists the exchanges the proxy did not pass, in order: kind, STAN
// and mutation (with the code a forgery wrote).
func attacks(exs []hostile.Exchange) string {
	var out []string
	for _, ex := range exs {
		if ex.Applied == hostile.Pass {
			continue
		}
		a := fmt.Sprintf("%s/%s %s", ex.Kind, ex.STAN, ex.Applied)
		switch ex.Applied {
		case hostile.ForgeDecline, hostile.Defect, hostile.Forge25MAC, hostile.Forge25Plain:
			a += " " + ex.HostRC + "→" + ex.DeliveredRC
		}
		out = append(out, a)
	}
	return strings.Join(out, ", ")
}

// failedLine is a step printer line of a failure.
var failedLine = regexp.MustCompile(`(?m)^step\| (\S+)\s+failed\s+attempt=\d+ error=(\S+)`)

// hostileInstall is one fresh install through the attacker, killed and
// restarted as the installer would until it is live or stops for the
// operator, then checked.
func hostileInstall(t *testing.T, bin string, rng *rand.Rand, window time.Duration, points []string,
	attacker hostile.Planner, archive *hostile.Archive, swiped bool) (res hostileResult) {
	res.counts = map[hostile.Mutation]int{}
	res.at, res.after = map[string]int{}, map[string]int{}
	res.end = "FAIL"
	removeChip := rig.InsertCard(t, "debit")
	t.Cleanup(removeChip)
	chipIn := true

	var last lastAnswer
	r := rig.New(t, rig.Options{MQTT: true, Faults: hostFaults(), OnAnswer: last.set})
	proxyLog, err := os.Create(filepath.Join(r.Logs, "proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxyLog.Close() })
	p, err := hostile.Listen("127.0.0.1:0", hostile.Options{Upstream: r.HostAddr, Plan: attacker,
		Late: hostTimeout + hostTimeout/2, Archive: archive, Log: slog.New(slog.NewTextHandler(proxyLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	edits := [][2]string{
		{`  address: "` + r.HostAddr + `"`, `  address: "` + p.Addr() + `"`},
		{"  timeout: 30s ", "  timeout: " + hostTimeout.String() + " "},
	}
	var mag *devsim.MagReader
	mode := "chip "
	if swiped {
		mode = "swipe"
		mag, err = devsim.NewMagReader(filepath.Join(r.Dir, "magstripe"), magstripe.MagTek)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mag.Close() })
		edits = append(edits,
			[2]string{"  magstripe: none ", "  magstripe: serial "},
			[2]string{"  magstripe_line:          # serial only; same keys and defaults as printer_line\n    device: \"\"",
				"  magstripe_line:\n    device: \"" + mag.Path() + "\""})
	}
	if err := configtest.WriteEdited(r.Config, r.Config, edits); err != nil {
		t.Fatal(err)
	}

	want := rng.IntN(hostileKills + 1)
	var story []string
	live := false
	maxStarts := maxFailures + hostileKills + 10
runs:
	for !live {
		cp, err := checkpoint(r.State)
		if err != nil {
			t.Fatalf("the state file does not parse: %v", err)
		}
		// A swiped install's chip card leaves once it is bound: the sale and
		// the void are swiped.
		if swiped && chipIn && cp.Card != nil {
			removeChip()
			chipIn = false
		}
		// A stop only an operator may clear: the operator's procedure, as
		// the acquirer's back office and a supervisor would run it — the
		// message cancelled by hand at the host, then F2 at the keypad.
		operatorTurn := false
		if cp.Step == provisioning.StepNeedsAttention && cp.Failure != nil && provisioning.OperatorOnly(cp.Failure.Code) &&
			len(cp.Unreversed) > 0 && res.operator < maxOperator {
			u := cp.Unreversed[0]
			booked, err := r.Host.CancelByHand(rig.TID, u.Batch, u.STAN)
			if err != nil {
				t.Fatal(err)
			}
			res.operator++
			operatorTurn = true
			story = append(story, fmt.Sprintf("operator: %s %s %06d cancelled by hand (host had it: %v), cleared", cp.Failure.Code, u.Kind, u.STAN, booked))
		}
		if !operatorTurn && cp.Step == provisioning.StepNeedsAttention && (!offersRetry(cp.Failure) || res.failures >= maxFailures) {
			break // for the operator, or a retry loop: outcome says which
		}
		if res.starts >= maxStarts {
			story = append(story, fmt.Sprintf("not settled after %d starts", res.starts))
			break
		}
		res.starts++
		name := fmt.Sprintf("start%02d", res.starts)
		// One key per run, for the first question the installer expects: the
		// retry of a failure that offers it, or the card's confirmation. A run
		// that meets another question stops there, and the campaign looks.
		keys := "#"
		switch {
		case operatorTurn:
			keys = "F2" // the supervisor's clear (the sim keypad asks no password)
		case cp.Step == provisioning.StepNeedsAttention || cp.Card == nil:
			keys = "ENTER"
		}
		args := []string{"--keys", keys}
		swap := swiped && chipIn
		how := ""
		var killAt <-chan time.Time
		switch {
		case res.kills >= want:
		case swap || rng.IntN(2) == 0:
			d := time.Duration(rng.Int64N(int64(window)))
			how = "delay " + d.Round(time.Millisecond).String()
			timer := time.NewTimer(d)
			defer timer.Stop()
			killAt = timer.C
		default:
			pt := points[rng.IntN(len(points))]
			how = "pause " + pt
			args = append(args, "--pause-at", pt)
		}
		if swap {
			args = append(args, "--pause-at", "enter:"+string(provisioning.StepTestSale))
		}
		a := r.StartAgent(t, bin, name, args...)
		stopSwiper := func() int { return 0 }
		if swiped && !chipIn {
			stopSwiper = startSwiper(a, mag)
		}
		killed, swapped := false, false
		select {
		case <-a.Done:
		case <-killAt:
			killed = a.Kill()
		case <-a.Paused:
			// In a swap run the only pause point is the test sale's start.
			killed = a.Kill()
			swapped = swap && killed
		case <-time.After(hungAfter):
			a.Kill()
			stopSwiper()
			errLog, _ := os.ReadFile(filepath.Join(r.Logs, name+".err"))
			t.Errorf("%s: agent neither ended nor paused within %v; stdout ends:\n%s\nstderr ends:\n%s",
				name, hungAfter, tail(a.Stdout(), 1500), tail(string(errLog), 3000))
			story = append(story, name+" hung")
			res.end = "hung"
			break runs
		}
		swipes := stopSwiper()
		answered := last.take()
		out := a.Stdout()
		var codes []string
		for _, m := range failedLine.FindAllStringSubmatch(out, -1) {
			codes = append(codes, m[2]+"@"+m[1])
		}
		res.failures += len(codes)
		run := name
		if len(codes) > 0 {
			run += " " + strings.Join(codes, ",")
		}
		if swipes > 0 {
			run += fmt.Sprintf(" (%d swipes)", swipes)
		}
		switch {
		case swapped:
			res.swaps++
			story = append(story, run+" chip out at test-sale")
		case killed:
			res.kills++
			left := "?"
			if kc, err := checkpoint(r.State); err == nil {
				left = string(kc.Step)
			}
			res.at[left]++
			res.after[answered]++
			story = append(story, run+" kill "+how+" (checkpoint "+left+", after "+answered+")")
		case a.State.Success() && strings.Contains(out, "step| live"):
			live = true
			story = append(story, run+" live")
		default:
			after, err := checkpoint(r.State)
			switch {
			case err != nil:
				t.Fatalf("%s: the state file does not parse: %v", name, err)
			case after.Step == provisioning.StepNeedsAttention:
				story = append(story, run)
			case after.Step == provisioning.StepBindCard && after.Card == nil:
				story = append(story, run+" (keys out at the card's confirmation)")
			default:
				story = append(story, run+" ?")
				t.Errorf("%s: agent exited %v at %s without going live or stopping for the installer; stdout:\n%s", name, a.State, after.Step, out)
				break runs
			}
		}
	}
	p.Close() // every exchange recorded, held answers dropped
	cp, err := checkpoint(r.State)
	if err != nil {
		t.Fatalf("final checkpoint: %v", err)
	}
	for _, ex := range p.Exchanges() {
		res.counts[ex.Applied]++
		if ex.Applied != ex.Planned {
			res.na++
		}
	}
	fail := func(what string, problems []string) string {
		for _, pr := range problems {
			t.Errorf("%s: %s", what, pr)
		}
		if len(problems) > 0 {
			res.broken = append(res.broken, what)
			return fmt.Sprintf("FAIL (%d)", len(problems))
		}
		return "ok"
	}

	// (d) how it ended.
	okEnd, end := outcome(cp, live, res.failures, maxFailures)
	switch {
	case res.end == "hung":
	case okEnd && live:
		res.end = "live"
	case okEnd:
		res.end = "stop " + cp.Failure.Code
	case strings.Contains(end, "retry loop"):
		res.end = "retry loop"
	}
	if !okEnd {
		t.Error("outcome: " + end)
		res.broken = append(res.broken, "outcome")
	}
	stopped := okEnd && !live

	// (a) money and (b) order, on the host's ledger and the wire.
	entries, err := ledger.Read(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	var money []string
	var summary string
	if live && cp.Sale != nil {
		money, summary, _ = ledgerProblems(entries, cp.Sale.STAN)
	} else {
		money, summary, _ = undoProblems(entries, leftToOperator(cp, stopped))
	}
	book := fail("money", money)
	if book == "ok" {
		book += " " + summary
	}
	// The downloads and the closed test batch, at live.
	procedure := "- (not live)"
	if live {
		d, derr := loadDownloads(r.State)
		pp, psum := procedureProblems(d, derr, cp, entries, hostServes(t))
		if procedure = fail("procedure", pp); procedure == "ok" {
			procedure += " " + psum
		}
	}
	reqs := saleRequests(p.Exchanges())
	order := fail("order", append(orderProblems(entries), wireOrderProblems(reqs, entries)...))
	if order == "ok" {
		order += fmt.Sprintf(" (%d sale requests)", len(reqs))
	}
	// (c) the wire.
	wp, wsum := wireProblems(p.Frames(), clearTracks)
	wire := fail("wire", wp)
	if wire == "ok" {
		wire += " " + wsum
	}
	// (e) secrets at rest and on MQTT, and the monitor's view.
	secrets := checkSecrets(t, r)
	if strings.HasPrefix(secrets, "FAIL") {
		res.broken = append(res.broken, "secrets")
	}
	final := provisioning.StateLive
	if !live {
		final = provisioning.StateFailed
	}
	events := "FAIL (monitor out of sync)"
	if evs, err := monitorEvents(t, r.Monitor); err == nil {
		problems, last, _ := seqProblems(evs, final)
		events = fail("events", append(problems, answeredProblems(evs, res.operator)...))
		if events == "ok" {
			events += fmt.Sprintf(" (seq 1..%d)", last)
		}
	} else {
		t.Errorf("monitor: %v", err)
		res.broken = append(res.broken, "events")
	}

	t.Logf("%s kills=%d swaps=%d starts=%d failures=%d operator=%d [%s] | link: %s [%s] | outcome: %s | ledger: %s | procedure: %s | order: %s | wire: %s | secrets: %s | events: %s",
		mode, res.kills, res.swaps, res.starts, res.failures, res.operator, strings.Join(story, "; "), formatCounts(res.counts, res.na),
		attacks(p.Exchanges()), end, book, procedure, order, wire, secrets, events)
	return res
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// startSwiper swipes the card each time the flow asks for it ("Insert
// card" on the screen), and again when a swipe seems lost (the prompt is
// still the last thing on the screen 2 s later: the line may not have been
// open yet). An extra swipe is harmless: it waits in the line for the next
// read, of the same card. The returned function stops it and says how many
// swipes it made.
func startSwiper(a *rig.Agent, mag *devsim.MagReader) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	swipes := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		seen, lastLen := 0, -1
		var last time.Time
		for {
			select {
			case <-done:
				return
			case <-a.Done:
				return
			case <-tick.C:
			}
			out := a.Stdout()
			n := strings.Count(out, "Insert card")
			prompting := strings.LastIndex(out, "Insert card") > strings.LastIndex(out, "step|")
			switch {
			case n > seen:
				time.Sleep(150 * time.Millisecond) // the flow opens the line after the prompt
			case prompting && len(out) == lastLen && time.Since(last) > 2*time.Second:
			default:
				continue
			}
			if mag.Swipe(swipeCard) == nil {
				swipes++
			}
			seen, lastLen, last = n, len(a.Stdout()), time.Now()
		}
	}()
	var once sync.Once
	return func() int {
		once.Do(func() { close(done) })
		wg.Wait()
		return swipes
	}
}
