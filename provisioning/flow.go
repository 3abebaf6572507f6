package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/posagent/posagent/provisioning/pan"
)

// Host is the acquirer host as the flow sees it: one method per message pair.
// A call that returns an error may or may not have reached the host; the flow
// keeps a reversal for it (see InFlight).
type Host interface {
	Echo(ctx context.Context, t Terminal) error
	SignOn(ctx context.Context, r SignOnRequest) (SignOnResult, error)
	Sale(ctx context.Context, r SaleRequest) (HostResponse, error)
	Void(ctx context.Context, r VoidRequest) (HostResponse, error)
	Reverse(ctx context.Context, r ReversalRequest) (HostResponse, error)
}

// SignOnRequest asks for working keys and the batch number.
type SignOnRequest struct {
	Terminal Terminal
	STAN     int
}

// SignOnResult is the host's answer to a sign-on.
type SignOnResult struct {
	RC       string
	Batch    string
	KeysOK   bool // every working key's check value matched
	HostTime time.Time
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
// it with a key the checkpoint never holds.
type PANSealer interface {
	SealPAN(p pan.PAN) ([]byte, error)
	OpenPAN(sealed []byte) (pan.PAN, error)
}

// HostResponse is the common part of a financial response.
type HostResponse struct {
	RC       string
	RRN      string
	AuthCode string
	Time     time.Time
}

// Receipt is what the printer needs for a sales slip; the card is masked already.
type Receipt struct {
	Merchant  Merchant
	Terminal  Terminal
	Card      BoundCard
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
	// MaxReversals is how many times one reversal is sent (or attempted, a
	// crash mid-send included) before the flow gives up on it and reports
	// E_REVERSAL_LIMIT. Zero means 3, the usual UnionPay terminal limit.
	MaxReversals int
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
	cp.Boot++
	// Where a restart continues from is the resume table's call, not the stored step's.
	cp.Step = resume[cp.Step]
	f.Log.Info("resume", "step", cp.Step, "attempt", cp.Attempt, "boot", cp.Boot)
	for {
		if err := ctx.Err(); err != nil {
			return cp, err
		}
		if cp.Step == StepNeedsAttention {
			if err := f.attention(ctx, &cp); err != nil {
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
		if cp.Step == StepLive {
			f.show(ctx, Screen{Title: "安装完成 INSTALLED", Lines: []string{"终端已开通 Terminal is live", "TID " + f.Terminal.TID}})
			f.report(ctx, &cp, StateLive, nil)
			return cp, nil
		}
		err := f.handler(cp.Step)(ctx, &cp)
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
		f.report(ctx, &cp, StateDone, nil)
		cp.Step = cp.Step.next()
		cp.Attempt = 0
	}
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
	cp.UpdatedAt = f.Clock.Now().UTC()
	b, err := cp.Encode()
	if err != nil {
		return fmt.Errorf("provisioning: encode checkpoint: %w", err)
	}
	if err := f.Store.Save(b); err != nil {
		return fmt.Errorf("provisioning: save checkpoint: %w", err)
	}
	return nil
}

func (f *Flow) handler(s Step) func(context.Context, *Checkpoint) error {
	switch s {
	case StepSelftest:
		return f.selftest
	case StepNetwork:
		return f.network
	case StepParameters:
		return f.parameters
	case StepSignOn:
		return f.signOn
	case StepBindCard:
		return f.bindCard
	case StepTestSale:
		return f.testSale
	case StepVoid:
		return f.void
	}
	// Only reachable through a programming error: Decode rejects unknown steps.
	return func(context.Context, *Checkpoint) error {
		return stepErr("E_INTERNAL", fmt.Errorf("no handler for step %s", s))
	}
}

// StatusOf is the status report of a saved checkpoint, for a report made on
// request rather than at a transition (central's "report now"): a stopped
// install reports its failure, a live one live, any other the step it is in
// as running.
func (f *Flow) StatusOf(cp Checkpoint) Status {
	s := Status{
		TID: f.Terminal.TID, MID: f.Terminal.MID, Serial: f.Terminal.Serial, Version: f.Version,
		Step: cp.Step, State: StateRunning, Attempt: cp.Attempt, Boot: cp.Boot,
		SignOn: cp.SignOn, Sale: cp.Sale, Void: cp.Void, Time: f.Clock.Now().UTC(),
		Message: "status on request: at " + string(cp.Step),
	}
	if cp.Card != nil {
		s.Card = cp.Card.Masked
	}
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

// attention asks the installer what to do about cp.Failure.
func (f *Flow) attention(ctx context.Context, cp *Checkpoint) error {
	fl := cp.Failure
	choice, err := f.UI.Ask(ctx, Screen{
		Title:   "需要处理 ATTENTION",
		Lines:   fl.Lines(),
		Failure: fl,
	}, Option{ID: "retry", Key: "ENTER", Label: "重试 Retry"}, Option{ID: "abort", Key: "CANCEL", Label: "中止 Abort"})
	if err != nil {
		return fmt.Errorf("provisioning: waiting for the installer at %s: %w", fl.Code, err)
	}
	if choice != "retry" {
		return ErrAborted
	}
	cp.Step, cp.Attempt, cp.Failure = fl.Step, 0, nil
	return nil
}

func (f *Flow) show(ctx context.Context, s Screen) {
	if err := f.UI.Show(ctx, s); err != nil {
		f.Log.Warn("screen", "err", err)
	}
}

func (f *Flow) report(ctx context.Context, cp *Checkpoint, state string, fl *Failure) {
	s := Status{
		TID: f.Terminal.TID, MID: f.Terminal.MID, Serial: f.Terminal.Serial, Version: f.Version,
		Step: cp.Step, State: state, Attempt: cp.Attempt, Boot: cp.Boot, Error: fl,
		SignOn: cp.SignOn, Sale: cp.Sale, Void: cp.Void, Time: f.Clock.Now().UTC(),
	}
	if cp.Card != nil {
		s.Card = cp.Card.Masked
	}
	switch state {
	case StateRunning:
		s.Message = "started " + string(cp.Step)
	case StateDone:
		s.Message = "finished " + string(cp.Step)
	case StateFailed:
		s.Message = fl.Code + ": " + fl.Message
	case StateLive:
		s.Message = "terminal is live"
	}
	f.Reporter.Report(ctx, s)
}
