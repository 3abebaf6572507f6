package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/posagent/posagent/provisioning/pan"
)

// Host is the acquirer host as the flow sees it: one method per message pair,
// the acquirer's procedure (downloads, status upload, settlement, sign-off)
// among them. A financial call that returns an error may or may not have
// reached the host; the flow keeps a reversal for it (see InFlight).
type Host interface {
	Echo(ctx context.Context, t Terminal) error
	SignOn(ctx context.Context, r SignOnRequest) (SignOnResult, error)
	Sale(ctx context.Context, r SaleRequest) (HostResponse, error)
	Void(ctx context.Context, r VoidRequest) (HostResponse, error)
	Reverse(ctx context.Context, r ReversalRequest) (HostResponse, error)
	AcquirerProcedure
}

// SignOnRequest asks for working keys and the batch number.
type SignOnRequest struct {
	Terminal Terminal
	STAN     int
	Batch    string // the terminal's current batch (60.2); "" before the first sign-on
}

// SignOnResult is the host's answer to a sign-on.
type SignOnResult struct {
	RC       string
	Batch    string
	KeysOK   bool // every working key's check value matched
	HostTime time.Time
	Demand   Demand // the header's processing requirement
	// Integrity is how far the answer can be believed, its time among it:
	// only an IntegrityAuthentic answer (a link authenticated end to end,
	// TLS with the acquirer's CA pinned, or a host in process) sets the
	// flow's clock. A sign-on answer carries no MAC, so anyone on an open
	// link could write its 12/13; the zero value sets nothing.
	Integrity Integrity
}

// SaleRequest is a purchase (0200, processing code 000000).
type SaleRequest struct {
	Terminal Terminal
	STAN     int
	Batch    string
	Amount   int64
	Card     Card
	Test     bool // the installer's first test sale
	// PINBlock is the cardholder's PIN as a PIN pad delivers it, a clear
	// ISO 9564 format-0 block; nil when no PIN was entered. The host
	// encrypts it under the PIK for field 52; nothing stores it.
	PINBlock PINBlock
}

// VoidRequest cancels an approved sale of the open batch (0200, 200000).
type VoidRequest struct {
	Terminal Terminal
	STAN     int
	Batch    string
	Card     Card
	Orig     TxnRecord
	PINBlock PINBlock // as in SaleRequest, for acquirers that want a PIN on voids
}

// ReversalRequest cancels a message whose answer never arrived (0400).
type ReversalRequest struct {
	Terminal Terminal
	Orig     InFlight
	Reason   string // field 39 of the 0400: "98" no answer
	// PAN is the original's field 2, opened from Orig.SealedPAN; zero when
	// the original kept none (a host that cannot seal, or a seal that no
	// longer opens), and the reversal then goes without field 2.
	PAN pan.PAN
}

// PINBlock is a clear PIN block on its way from the PIN pad to the host
// message. Like pan.Track it redacts itself wherever it could be printed,
// logged or marshalled: PCI DSS forbids keeping a PIN block, even encrypted.
type PINBlock []byte

const redactedPIN = "[PIN block]"

// String never shows the block.
func (b PINBlock) String() string {
	if len(b) == 0 {
		return ""
	}
	return redactedPIN
}

// GoString never shows the block, even under %#v.
func (b PINBlock) GoString() string { return `provisioning.PINBlock("` + b.String() + `")` }

// LogValue keeps the block out of slog.
func (b PINBlock) LogValue() slog.Value { return slog.StringValue(b.String()) }

// MarshalText keeps the block out of JSON and checkpoints.
func (b PINBlock) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// PANSealer keeps the PAN of an in-flight message unreadable at rest: the
// checkpoint holds only what SealPAN returns, and OpenPAN gives the PAN back
// for the reversal's field 2 after a restart. The acquirer client implements
// it with a key the checkpoint never holds. ad binds the seal to its message
// (terminal, batch, STAN, kind): OpenPAN with other ad fails, so a seal
// copied into another record opens nowhere.
type PANSealer interface {
	SealPAN(p pan.PAN, ad []byte) ([]byte, error)
	OpenPAN(sealed, ad []byte) (pan.PAN, error)
}

// HostResponse is the common part of a financial response. A Host returns
// one only for an answer that matched its request (MTI, processing code,
// amount, STAN, TID, MID); Integrity says whether its MAC verified.
type HostResponse struct {
	RC        string
	RRN       string
	AuthCode  string
	Time      time.Time
	Integrity Integrity
	// Issuer and Acquirer are field 44's institution codes: the slip's
	// 发卡行 and 收单行.
	Issuer, Acquirer string
	Demand           Demand // the header's processing requirement
	// ICData is field 55 of the answer (91, 71, 72), raw; nil when the
	// host sent none.
	ICData []byte
}

// Receipt is what the printer needs for a sales slip: everything about the
// card comes from the transaction (the card that paid, masked), never from
// the bound settlement card.
type Receipt struct {
	Merchant  Merchant
	Terminal  Terminal
	Txn       TxnRecord
	Kind      string // "sale", "void"
	Test      bool
	Duplicate bool // an earlier attempt may have printed: mark this one
}

// Printer prints sales slips.
type Printer interface {
	PrintReceipt(ctx context.Context, r Receipt) error
}

// ParameterSource delivers the terminal's merchant record (from the config now,
// from a signed install ticket later).
type ParameterSource interface {
	Parameters(ctx context.Context, t Terminal) (Merchant, error)
}

// SelfTester is implemented by devices that can check themselves.
type SelfTester interface {
	SelfTest(ctx context.Context) error
}

// Flow runs the install procedure. Every field but Log, MaxAttempts, Sealer
// and MaxReversals is required.
type Flow struct {
	Terminal Terminal
	Rules    BindingRules
	Amount   int64 // test sale, minor units
	Version  string

	Params   ParameterSource
	Card     CardSource
	Host     Host
	Printer  Printer
	UI       Prompter
	Reporter Reporter
	Store    Store
	Clock    Clock
	Log      *slog.Logger
	// MaxAttempts bounds how often one step is entered without finishing (a crash
	// loop) before the flow stops for the installer. Zero means 5.
	MaxAttempts int
	// Sealer keeps the in-flight PAN encrypted in the checkpoint; nil means the
	// Host when it implements PANSealer. Without one, reversals go without
	// field 2 (hosts match them by terminal, batch and STAN).
	Sealer PANSealer
	// MaxReversals is how many times one reversal may have reached the host
	// (a crash mid-send included; a try that never left the terminal does
	// not count) before the flow gives up on it and stops for an operator
	// with E_REVERSAL_LIMIT. Zero means 3, the usual UnionPay terminal limit.
	MaxReversals int
	// Codes is the acquirer's table of approval and final-decline codes;
	// zero means DefaultResponseCodes.
	Codes ResponseCodes
	// MaxTestAmount caps the test-sale amount a merchant record may ask for
	// (fen); zero means DefaultMaxTestAmount. Such an amount is also shown
	// to the installer to confirm.
	MaxTestAmount int64
	// OnEnter, when set, is called as each step starts, after its checkpoint
	// is written and its start reported: the crash tests freeze the agent
	// there ("enter:STEP"). It must return promptly unless ctx ends.
	OnEnter func(ctx context.Context, s Step)
	// Downloads keeps the CA keys and IC parameters the host sent; nil
	// keeps them in memory only, and a restart downloads them again.
	Downloads DownloadStore
	// Netting is how the acquirer's settlement counts a voided sale; zero
	// means NettingGross.
	Netting Netting
	// BuildTime is the floor of the flow's clock (FloorClock) when Clock
	// is not a *FloorClock already; zero means DefaultBuildTime.
	BuildTime time.Time

	mu        sync.Mutex
	cur       *Checkpoint // the checkpoint as last saved, once Run has loaded it
	requested []Demand    // downloads central asked to run again (Request)
	clockOnce sync.Once
	fclock    *FloorClock
	memOnce   sync.Once
	mem       *memDownloads
}

// ErrResponseMAC is what a Host wraps when a response's MAC does not verify:
// the host may have approved, so the message is reversed, with reason A0.
var ErrResponseMAC = errors.New("provisioning: response MAC does not verify")

// ErrAborted is returned when the installer aborts at needs-attention.
var ErrAborted = errors.New("provisioning: aborted by the installer")

// Run resumes the install from the stored checkpoint and returns when the
// terminal is live (nil), the installer aborted (ErrAborted), the context ended,
// or the prompter or store failed. An unreadable checkpoint is returned as an
// error wrapping ErrCorruptState and nothing else happens.
func (f *Flow) Run(ctx context.Context) (Checkpoint, error) {
	if f.Log == nil {
		f.Log = slog.Default()
	}
	if f.MaxAttempts <= 0 {
		f.MaxAttempts = 5
	}
	cp, err := f.load()
	if err != nil {
		return cp, err
	}
	f.restoreClock(&cp)
	cp.Boot++
	// Where a restart continues from is the resume table's call, not the
	// stored step's.
	stored := cp.Step
	var why string
	cp.Step, why = route(cp.Step, &cp)
	if cp.Step != stored {
		cp.Attempt = 0 // a step of its own: its own count of entries
	}
	f.Log.Info("resume", "stored", stored, "step", cp.Step, "why", why, "attempt", cp.Attempt, "boot", cp.Boot)
	f.freeze(ctx, &cp)
	for {
		if err := ctx.Err(); err != nil {
			return cp, err
		}
		if cp.Step == StepNeedsAttention {
			if err := f.attention(ctx, &cp); err != nil {
				// ErrReset among them: the agent starts again around the
				// new identity.
				return cp, err
			}
			continue
		}
		cp.Attempt++
		if cp.Attempt > f.MaxAttempts {
			f.fail(ctx, &cp, stepErr("E_TOO_MANY_ATTEMPTS", nil, string(cp.Step), cp.Attempt-1))
			continue
		}
		// The checkpoint is written before the step runs: a power cut inside it
		// resumes here, and each handler is written to run again safely.
		if err := f.save(&cp); err != nil {
			return cp, err
		}
		f.report(ctx, &cp, StateRunning, nil)
		if f.OnEnter != nil {
			f.OnEnter(ctx, cp.Step)
		}
		if cp.Step == StepLive {
			f.show(ctx, Screen{Title: "安装完成 INSTALLED", Lines: []string{"终端已开通 Terminal is live", "TID " + f.term(&cp).TID}})
			f.report(ctx, &cp, StateLive, nil)
			return cp, nil
		}
		info, _ := Info(cp.Step)
		err := info.run(f, ctx, &cp)
		if err != nil {
			if ctx.Err() != nil {
				// Shutting down: the checkpoint already says where to resume.
				return cp, ctx.Err()
			}
			var pe *promptError
			if errors.As(err, &pe) {
				// The keypad or screen is gone, not the step: it runs again
				// from the checkpoint once they are back.
				return cp, pe.err
			}
			f.fail(ctx, &cp, err)
			continue
		}
		// Whatever demanded this step's work has it now, demanded or not:
		// route would otherwise send the flow back to it.
		cp.served(info.Serves)
		f.report(ctx, &cp, StateDone, nil)
		next := cp.Step.line()
		if cp.Step == StepReverse {
			next = StepReverse // route says where the reversal leads
		}
		cp.Step, _ = route(next, &cp)
		cp.Attempt = 0
	}
}

// term is the identity the install runs under: the one frozen in the
// checkpoint, else (before the first checkpoint) the configured one.
func (f *Flow) term(cp *Checkpoint) Terminal {
	if cp.Terminal != nil {
		t := *cp.Terminal
		if t.Serial == "" {
			t.Serial = f.Terminal.Serial
		}
		return t
	}
	return f.Terminal
}

// freeze fixes the install's identity at its first checkpoint. A different
// MID or TID given later is adopted only while nothing has gone to the host
// under the old one but an echo (before parameters); after that it stops
// the install for an operator: a reversal must go out under the TID of its
// original, and the merchant record, keys and batch belong to the old one.
// A live terminal keeps the identity it went live with.
func (f *Flow) freeze(ctx context.Context, cp *Checkpoint) {
	switch {
	case cp.Terminal == nil:
		t := f.Terminal
		cp.Terminal = &t
		return
	case cp.Terminal.TID == f.Terminal.TID && cp.Terminal.MID == f.Terminal.MID:
		if cp.Step == StepNeedsAttention && cp.Failure != nil && cp.Failure.Code == "E_IDENTITY_CHANGED" {
			// The numbers were put back: the install goes on where it stopped.
			f.Log.Info("identity restored", "tid", cp.Terminal.TID)
			cp.Step, cp.Attempt, cp.Failure = cp.Failure.Step, 0, nil
		}
		return
	case cp.Step == StepLive:
		f.Log.Warn("configured identity differs from the one the terminal went live with; keeping that",
			"live_tid", cp.Terminal.TID, "configured_tid", f.Terminal.TID)
		return
	case cp.Merchant == nil && cp.SignOn == nil && cp.InFlight == nil && cp.Sale == nil && len(cp.Unreversed) == 0:
		f.Log.Info("identity changed before parameters; adopting it", "tid", f.Terminal.TID, "mid", f.Terminal.MID)
		t := f.Terminal
		cp.Terminal = &t
		return
	}
	if cp.Step == StepNeedsAttention && cp.Failure != nil && cp.Failure.Code == "E_IDENTITY_CHANGED" {
		return
	}
	if cp.Step == StepNeedsAttention && cp.Failure != nil {
		cp.Step = cp.Failure.Step
	}
	f.fail(ctx, cp, stepErr("E_IDENTITY_CHANGED", nil, cp.Terminal.MID, cp.Terminal.TID, f.Terminal.MID, f.Terminal.TID))
}

// RunningIdentity is the identity an install in st runs under: the one its
// checkpoint froze, or wanted (the installer's or the config's numbers)
// when no checkpoint froze one yet. Reporting, tickets and commands run
// under it, so that everything about one install speaks for one terminal;
// the flow, given wanted, tells when the two differ (E_IDENTITY_CHANGED).
func RunningIdentity(st Store, wanted Terminal) (Terminal, error) {
	b, err := st.Load()
	if errors.Is(err, ErrNoState) {
		return wanted, nil
	}
	if err != nil {
		return wanted, fmt.Errorf("provisioning: load checkpoint: %w", err)
	}
	cp, err := Decode(b)
	if err != nil {
		return wanted, err
	}
	if cp.Terminal == nil {
		return wanted, nil
	}
	t := *cp.Terminal
	t.Serial = wanted.Serial
	return t, nil
}

// ErrReset is returned by Run after an operator reset the install for a new
// identity: the caller rebuilds what depends on the identity (reporting,
// tickets) and runs the flow again.
var ErrReset = errors.New("provisioning: install reset for a new identity")

// clear is the operator's answer to a failure only an operator may clear.
// For a message the acquirer cancelled by hand it moves the message to
// Cleared and retries the step; for a changed identity it resets the
// install, which is refused while anything is charged or unsettled. It
// reports whether the install was reset.
func (f *Flow) clear(ctx context.Context, cp *Checkpoint) bool {
	fl := cp.Failure
	now := f.now()
	switch fl.Code {
	case "E_IDENTITY_CHANGED":
		if len(cp.Unresolved()) > 0 || cp.Sale != nil && cp.Void == nil {
			f.Log.Warn("reset refused: a charge is not settled", "unresolved", len(cp.Unresolved()))
			f.show(ctx, Screen{Title: "不能重置 CANNOT RESET", Lines: []string{"有未完成交易 A charge is not settled",
				"先恢复原商户号终端号 Restore the old MID/TID first"}})
			return false
		}
		old := *cp
		t := f.Terminal
		*cp = Checkpoint{Schema: SchemaVersion, Step: StepSelftest, Terminal: &t, STAN: old.STAN,
			Reversed: old.Reversed, Cleared: old.Cleared}
		f.Log.Warn("install reset for a new identity", "old_tid", old.Terminal.TID, "tid", t.TID)
		f.report(ctx, &old, StateReset, nil)
		return true
	default:
		if len(cp.Unreversed) == 0 {
			cp.Step, cp.Attempt, cp.Failure = fl.Step, 0, nil
			return false
		}
		u := cp.Unreversed[0]
		u.State, u.ClearedBy, u.ClearedAt = "cleared", "operator", now
		cp.Cleared = append(cp.Cleared, u)
		cp.Unreversed = cp.Unreversed[1:]
		f.Log.Warn("operator cleared an unsettled message", "kind", u.Kind, "stan", u.STAN, "batch", u.Batch, "code", u.Code)
		cp.Step, cp.Attempt, cp.Failure = fl.Step, 0, nil
	}
	return false
}

func (f *Flow) load() (Checkpoint, error) {
	b, err := f.Store.Load()
	if errors.Is(err, ErrNoState) {
		return Checkpoint{Schema: SchemaVersion, Step: StepSelftest}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("provisioning: load checkpoint: %w", err)
	}
	return Decode(b)
}

func (f *Flow) save(cp *Checkpoint) error {
	cp.Schema = SchemaVersion
	cp.UpdatedAt = f.now()
	b, err := cp.Encode()
	if err != nil {
		return fmt.Errorf("provisioning: encode checkpoint: %w", err)
	}
	if err := f.Store.Save(b); err != nil {
		return fmt.Errorf("provisioning: save checkpoint: %w", err)
	}
	f.mu.Lock()
	c := *cp
	f.cur = &c
	f.mu.Unlock()
	return nil
}

// Current is the install's checkpoint as the flow last saved it, for
// whoever asks while it runs (central's commands, the installer's menu);
// before Run has saved one it is read from the store, and ErrNoState says
// the install never started. The flow is the one reader of the store:
// others ask it.
func (f *Flow) Current() (Checkpoint, error) {
	f.mu.Lock()
	cur := f.cur
	f.mu.Unlock()
	if cur != nil {
		return *cur, nil
	}
	b, err := f.Store.Load()
	if err != nil {
		return Checkpoint{}, err
	}
	return Decode(b)
}

// StatusOf is the status report of a saved checkpoint, for a report made on
// request rather than at a transition (central's "report now"): a stopped
// install reports its failure, a live one live, any other the step it is in
// as running.
func (f *Flow) StatusOf(cp Checkpoint) Status {
	s := f.status(&cp, StateRunning, nil)
	s.Message = "status on request: at " + string(cp.Step)
	switch {
	case cp.Step == StepNeedsAttention && cp.Failure != nil:
		s.Step, s.State, s.Error = cp.Failure.Step, StateFailed, cp.Failure
		s.Message = "status on request: " + cp.Failure.Code + ": " + cp.Failure.Message
	case cp.Step == StepLive:
		s.State, s.Message = StateLive, "status on request: terminal is live"
	}
	return s
}

// fail moves the flow to needs-attention, persisting why. The cause goes to
// the log and the report; the installer's screen gets the code, its sentence
// and what to do (attention).
func (f *Flow) fail(ctx context.Context, cp *Checkpoint, err error) {
	fl := FailureFor(cp.Step, err)
	f.Log.Warn("step failed", "step", cp.Step, "code", fl.Code, "err", err)
	cp.Failure = fl
	f.report(ctx, cp, StateFailed, fl)
	cp.Step = StepNeedsAttention
	if serr := f.save(cp); serr != nil {
		f.Log.Error("save checkpoint", "err", serr)
	}
}

// attention asks the installer what to do about cp.Failure: retry or abort,
// or, for what only an operator may settle, clear (the prompter asks for the
// supervisor's password, or central sends a signed command) or abort.
func (f *Flow) attention(ctx context.Context, cp *Checkpoint) error {
	fl := cp.Failure
	lines := fl.Lines()
	for _, u := range cp.Unresolved() {
		lines = append(lines, fmt.Sprintf("未决 Unresolved: %s %06d %s %s", u.Kind, u.STAN, u.Masked, FormatRMB(u.Amount)))
	}
	first := Option{ID: "retry", Key: "ENTER", Label: "重试 Retry"}
	if slices.Contains(fl.Actions, "clear") {
		first = Option{ID: "clear", Key: "F2", Label: "主管清除 Supervisor clear"}
	}
	choice, err := f.UI.Ask(ctx, Screen{Title: "需要处理 ATTENTION", Lines: lines, Failure: fl},
		first, Option{ID: "abort", Key: "CANCEL", Label: "中止 Abort"})
	if err != nil {
		return fmt.Errorf("provisioning: waiting for the installer at %s: %w", fl.Code, err)
	}
	switch {
	case choice == "clear" && first.ID == "clear":
		reset := f.clear(ctx, cp)
		if err := f.save(cp); err != nil {
			return err
		}
		if reset {
			return ErrReset
		}
		return nil
	case choice == "retry" && first.ID == "retry":
		cp.Attempt, cp.Failure = 0, nil
		for _, d := range f.takeRequests() {
			f.noteDemand(cp, d, "central")
		}
		cp.Step, _ = route(fl.Step, cp)
		return nil
	}
	return ErrAborted
}

func (f *Flow) show(ctx context.Context, s Screen) {
	if err := f.UI.Show(ctx, s); err != nil {
		f.Log.Warn("screen", "err", err)
	}
}

// reported is a transaction record as a report carries it: without the
// sealed PAN, which stays on the terminal for its own batch upload.
func reported(r *TxnRecord) *TxnRecord {
	if r == nil {
		return nil
	}
	c := *r
	c.SealedPAN = nil
	return &c
}

// status is the report of cp in state: everything a report carries but its
// message.
func (f *Flow) status(cp *Checkpoint, state string, fl *Failure) Status {
	t := f.term(cp)
	now, src := f.clock().Read()
	s := Status{
		TID: t.TID, MID: t.MID, Serial: t.Serial, Version: f.Version,
		Step: cp.Step, State: state, Attempt: cp.Attempt, Boot: cp.Boot, Error: fl,
		SignOn: cp.SignOn, Sale: reported(cp.Sale), Void: reported(cp.Void), Unresolved: cp.Unresolved(),
		CAPK: cp.CAPK, Apps: cp.Apps, Demands: cp.Demands, Settlement: cp.Settlement, Business: cp.Business,
		Time: now.UTC(), Clock: src,
	}
	if cp.Card != nil {
		s.Card = cp.Card.Masked
	}
	return s
}

func (f *Flow) report(ctx context.Context, cp *Checkpoint, state string, fl *Failure) {
	s := f.status(cp, state, fl)
	switch state {
	case StateRunning:
		s.Message = "started " + string(cp.Step)
	case StateDone:
		s.Message = "finished " + string(cp.Step)
	case StateFailed:
		s.Message = fl.Code + ": " + fl.Message
	case StateLive:
		s.Message = "terminal is live"
	case StateReset:
		s.Message = "install reset by an operator for a new identity"
	}
	f.Reporter.Report(ctx, s)
}
