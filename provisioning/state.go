package provisioning

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Step is a state of the install flow. Its string is what the checkpoint stores
// and what monitoring sees, so the strings never change meaning.
type Step string

// The install procedure, in order, and the states outside the line
// (procedure.go describes each).
const (
	StepSelftest   Step = "selftest"
	StepNetwork    Step = "network"
	StepParameters Step = "parameters"
	StepSignOn     Step = "sign-on"
	// The acquirer's downloads after sign-on: chip transactions are
	// refused until the CA keys and IC parameters are in.
	StepCAPK           Step = "capk"
	StepICParams       Step = "ic-params"
	StepTerminalParams Step = "terminal-params"
	StepStatusUpload   Step = "status-upload"
	StepBindCard       Step = "bind-card"
	StepTestSale       Step = "test-sale"
	StepPrintSlip      Step = "print-slip"
	StepVoid           Step = "void"
	// StepPrintVoidSlip prints the void's slip, as print-slip does the
	// sale's: a real void has its own (原凭证号, 原参考号).
	StepPrintVoidSlip Step = "print-void-slip"
	// Closing the test batch: settlement (with its batch upload when the
	// host's totals differ), sign-off, and the sign-on that opens the
	// batch the terminal goes live with.
	StepSettle         Step = "settle"
	StepSignOff        Step = "sign-off"
	StepSignOnBusiness Step = "sign-on-business"
	StepLive           Step = "live"
	// StepReverse sends the reversal of the message in flight; route enters
	// it whenever one is unsettled.
	StepReverse        Step = "reverse"
	StepNeedsAttention Step = "needs-attention"
)

// SchemaVersion is the checkpoint layout this build writes and reads.
const SchemaVersion = 1

// Checkpoint is the whole persisted progress of the install. It never holds a
// full PAN, track data, PIN block or key.
type Checkpoint struct {
	Schema    int       `json:"schema"`
	Step      Step      `json:"step"`
	Attempt   int       `json:"attempt"` // times Step has been entered since it was first reached
	Boot      int       `json:"boot"`    // agent starts since the install began
	UpdatedAt time.Time `json:"updated_at"`

	// Failure is set while Step is needs-attention.
	Failure *Failure `json:"failure,omitempty"`

	// Terminal is the identity the install runs under, frozen at its first
	// checkpoint: every host message, report and ticket of this install is
	// for it, and a reversal goes out under the TID its original did.
	Terminal *Terminal `json:"terminal,omitempty"`
	// KeysStale is set when an answer failed its MAC check: the working keys
	// may be out of step with the host's, so the next online step signs on
	// again first.
	KeysStale bool `json:"keys_stale,omitempty"`

	Merchant *Merchant `json:"merchant,omitempty"` // loaded by parameters
	// SignOn is the last sign-on: its batch is the terminal's current one.
	SignOn *SignOnRecord `json:"sign_on,omitempty"`
	// CAPK and Apps record the CA key and IC parameter downloads the host
	// acknowledged (the lists are in the DownloadStore).
	CAPK *DownloadRecord `json:"capk,omitempty"`
	Apps *DownloadRecord `json:"ic_params,omitempty"`
	// TermParams are the downloaded terminal parameters: from then on the
	// terminal uses them, not its config's (Flow.termParams).
	TermParams   *TerminalParams `json:"terminal_params,omitempty"`
	StatusUpload *AdminRecord    `json:"status_upload,omitempty"`
	// Demands is what the hosts' answers asked for (the header's
	// processing requirement), one note per kind: a pending one runs
	// before the next transaction.
	Demands []DemandNote `json:"demands,omitempty"`
	// Settlement, SignOff and Business close the test batch and open the
	// one the terminal goes live with.
	Settlement *SettleRecord `json:"settlement,omitempty"`
	SignOff    *AdminRecord  `json:"sign_off,omitempty"`
	Business   *SignOnRecord `json:"sign_on_business,omitempty"`
	// Clock keeps the host's time of the last trusted sign-on.
	Clock *ClockRecord `json:"clock,omitempty"`

	Card     *BoundCard     `json:"card,omitempty"`
	STAN     int            `json:"stan"` // last STAN used; never reused within the batch
	InFlight *InFlight      `json:"in_flight,omitempty"`
	Sale     *TxnRecord     `json:"sale,omitempty"`
	Slip     *SlipRecord    `json:"slip,omitempty"`
	Void     *TxnRecord     `json:"void,omitempty"`
	VoidSlip *SlipRecord    `json:"void_slip,omitempty"` // the void's slip, as Slip is the sale's
	Reversed []ReversalNote `json:"reversed,omitempty"`
	// Unreversed are messages the terminal cannot settle by itself (a
	// reversal given up after Flow.MaxReversals tries, a void the host says
	// it cannot match): the acquirer must cancel them by hand, and no
	// financial message goes out until an operator clears each one.
	Unreversed []ReversalNote `json:"unreversed,omitempty"`
	// Cleared are the Unreversed an operator cleared, with who and when.
	Cleared []ReversalNote `json:"cleared,omitempty"`
	// Undone are test sales reversed because the host could not match
	// their void: the install sold again after each.
	Undone []ReversalNote `json:"undone,omitempty"`
}

// Unresolved lists what is not settled with the host, masked: the message
// being reversed, and every one waiting for an operator. Every status report
// carries it.
func (c Checkpoint) Unresolved() []ReversalNote {
	var out []ReversalNote
	if inf := c.InFlight; inf != nil {
		out = append(out, ReversalNote{Kind: inf.Kind, STAN: inf.STAN, Batch: inf.Batch, Amount: inf.Amount,
			Masked: inf.Masked, Attempts: inf.Attempts, State: "reversing"})
	}
	return append(out, c.Unreversed...)
}

// SaleAmount is the test sale's amount for this install: the merchant
// record's when it names one (central's ticket), else def (the terminal's
// configured amount). Card sources use it too, so the chip signs the amount
// the host is sent.
func (c Checkpoint) SaleAmount(def int64) int64 {
	if c.Merchant != nil && c.Merchant.TestAmount > 0 {
		return c.Merchant.TestAmount
	}
	return def
}

// Failure is why the flow stopped for the installer.
type Failure struct {
	Step    Step   `json:"step"`
	Code    string `json:"code"`
	Message string `json:"message"` // one sentence, Chinese then English
	// Action says what to do about it, Chinese then English.
	Action string `json:"action,omitempty"`
	// Cause is the technical chain behind the failure, for the log and
	// central's report; screens never show it. It carries no card data.
	Cause   string   `json:"cause,omitempty"`
	Actions []string `json:"actions"` // what the installer can do: "retry", "abort"
}

// Lines are the failure as a screen shows it: the step and code, the
// sentence, then what to do.
func (fl *Failure) Lines() []string {
	lines := []string{string(fl.Step) + " " + fl.Code, fl.Message}
	if fl.Action != "" {
		lines = append(lines, "> "+fl.Action)
	}
	return lines
}

// SignOnRecord is what sign-on established (never the keys themselves).
type SignOnRecord struct {
	Batch    string    `json:"batch"`
	KeysOK   bool      `json:"keys_ok"` // every check value matched
	HostTime time.Time `json:"host_time"`
}

// AdminRecord is an administrative exchange the host acknowledged.
type AdminRecord struct {
	RC string    `json:"rc"`
	At time.Time `json:"at"`
}

// SettleRecord is the settlement of the test batch, step by step: the
// totals sent, the host's verdict, the batch upload's progress when the host
// disagreed, and the batch that follows.
type SettleRecord struct {
	Batch    string `json:"batch"`
	Domestic Totals `json:"domestic"`
	Foreign  Totals `json:"foreign"`
	// Answered is set once the host's answer is recorded; Balanced is its
	// verdict on both sides.
	Answered bool `json:"answered"`
	Balanced bool `json:"balanced"`
	// Uploaded counts the batch's transactions the host acknowledged in
	// the batch upload; UploadEnded its end message. EndSent is set before
	// the end first leaves: a host that closed the batch on an end whose
	// answer was lost refuses the one sent again with 77.
	// TCUploaded and ScriptsNotified record, before the settlement
	// itself, the chip sale's TC upload and its issuer script results.
	TCUploaded      bool `json:"tc_uploaded,omitempty"`
	ScriptsNotified bool `json:"scripts_notified,omitempty"`
	Uploaded        int  `json:"uploaded,omitempty"`
	EndSent         bool `json:"end_sent,omitempty"`
	UploadEnded     bool `json:"upload_ended,omitempty"`
	// NextBatch is the batch the terminal signs on with for business.
	NextBatch string    `json:"next_batch,omitempty"`
	Done      bool      `json:"done"`
	At        time.Time `json:"at,omitzero"`
}

// BoundCard is the settlement card as far as it may be stored.
type BoundCard struct {
	Masked string   `json:"masked"`
	Name   string   `json:"name"`
	Type   CardType `json:"type"`
	AID    string   `json:"aid,omitempty"`
	Label  string   `json:"label,omitempty"`
	Expiry string   `json:"expiry"`
}

// InFlight is an online message sent (or about to be) and not yet answered: a
// restart must reverse it before anything else goes online.
type InFlight struct {
	Kind   string `json:"kind"` // "sale" or "void"
	STAN   int    `json:"stan"`
	Batch  string `json:"batch"`
	Amount int64  `json:"amount"`
	// OrigSTAN is the sale a void cancels.
	OrigSTAN int `json:"orig_stan,omitempty"`
	// Reason is field 39 of the reversal: "98" no answer (the default), "A0"
	// the answer's MAC did not verify, "96" a terminal fault (an approval
	// the terminal could not finish on the card, a power cut in between
	// included), "06" the card declined (AAC) or left after the host
	// approved.
	Reason string `json:"reason,omitempty"`
	// Expiry, Seq and AuthCode are fields 14, 23 and 38 of an IC
	// reversal: the card's expiry and PAN sequence number, and the
	// authorisation code of an approval the card then refused. IC is its
	// field 55 (95 9F1E 9F10 9F36, DF31 when scripts ran), hex.
	Expiry   string `json:"expiry,omitempty"`
	Seq      string `json:"seq,omitempty"`
	AuthCode string `json:"auth_code,omitempty"`
	IC       string `json:"ic,omitempty"`
	// SealedPAN is the original's PAN as Flow.Sealer sealed it, for the
	// reversal's field 2; never the PAN itself. Masked is for the installer
	// and monitoring.
	SealedPAN []byte `json:"sealed_pan,omitempty"`
	Masked    string `json:"card,omitempty"`
	// Entry and PIN are how the original was read (field 22 and 60.5 of the
	// reversal repeat the original's).
	Entry Entry `json:"entry,omitempty"`
	PIN   bool  `json:"pin,omitempty"`
	// Attempts counts reversals sent, counted before each send so that one cut
	// short by a crash counts too.
	Attempts int `json:"attempts,omitempty"`
}

// TxnRecord is a host-approved transaction.
type TxnRecord struct {
	STAN  int    `json:"stan"`
	Batch string `json:"batch"`
	// Entry is how the paying card was read (a reversal repeats it).
	Entry    Entry     `json:"entry,omitempty"`
	Amount   int64     `json:"amount"` // minor units (fen)
	RC       string    `json:"rc"`     // field 39
	RRN      string    `json:"rrn"`    // field 37
	AuthCode string    `json:"auth_code"`
	Time     time.Time `json:"time"`
	// The card that paid, as far as it may be kept: masked number, and what
	// the slip prints about it.
	Masked string `json:"card"`
	// SealedPAN is the sale's PAN as Flow.Sealer sealed it (bound to the
	// sale as its reversal image was), for the card number the batch
	// upload after an unbalanced settlement carries; dropped once the
	// batch is settled. Never the PAN itself.
	SealedPAN []byte `json:"sealed_pan,omitempty"`
	AID       string `json:"aid,omitempty"`
	Label     string `json:"label,omitempty"`
	Expiry    string `json:"expiry,omitempty"`
	// Issuer and Acquirer are the institution codes of the answer's field
	// 44, as the host sent them: the slip's 发卡行 and 收单行, left out when
	// the host sent none.
	Issuer   string `json:"issuer,omitempty"`
	Acquirer string `json:"acquirer,omitempty"`
	// OrigSTAN and OrigRRN are the sale a void cancels: its slip prints
	// them as 原凭证号 and 原参考号.
	OrigSTAN int    `json:"orig_stan,omitempty"`
	OrigRRN  string `json:"orig_rrn,omitempty"`
	// IC is the chip's record of a chip sale (its TC, TVR, TSI …): the
	// slip's IC lines and the TC upload at settlement.
	IC *ICData `json:"ic,omitempty"`
	// PIN says the cardholder entered an online PIN (22's third digit).
	PIN bool `json:"pin,omitempty"`
}

// SlipRecord counts print attempts: an attempt that may have printed makes the
// next one a marked duplicate.
type SlipRecord struct {
	Attempts int  `json:"attempts"`
	Printed  bool `json:"printed"`
}

// ReversalNote records a reversal the flow sent, or (in
// Checkpoint.Unreversed) one it gave up on, with what the acquirer needs to
// find the original by hand.
type ReversalNote struct {
	Kind     string `json:"kind"`
	STAN     int    `json:"stan"`
	Batch    string `json:"batch,omitempty"`
	Amount   int64  `json:"amount,omitempty"`
	Masked   string `json:"card,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	// State is "reversing" (the terminal is sending the reversal) or
	// "operator" (waiting for the acquirer and an operator); Code is the
	// failure that put it there.
	State string `json:"state,omitempty"`
	Code  string `json:"code,omitempty"`
	// ClearedBy and ClearedAt record the operator's clear.
	ClearedBy string    `json:"cleared_by,omitempty"`
	ClearedAt time.Time `json:"cleared_at,omitzero"`
}

// ErrCorruptState is returned for a state file that exists but cannot be trusted.
// It is never treated as a new terminal: that would repeat a sale.
var ErrCorruptState = errors.New("provisioning: state file is corrupt")

// Encode renders a checkpoint for the store.
func (c Checkpoint) Encode() ([]byte, error) {
	return json.MarshalIndent(c, "", "  ")
}

// Decode parses and checks a stored checkpoint.
func Decode(b []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(b) == 0 {
		return c, fmt.Errorf("%w: empty", ErrCorruptState)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if c.Schema != SchemaVersion {
		return c, fmt.Errorf("%w: schema %d, this build reads %d", ErrCorruptState, c.Schema, SchemaVersion)
	}
	if !c.Step.Valid() {
		return c, fmt.Errorf("%w: unknown step %q", ErrCorruptState, c.Step)
	}
	if c.Step == StepNeedsAttention && c.Failure == nil {
		return c, fmt.Errorf("%w: needs-attention without a failure", ErrCorruptState)
	}
	return c, nil
}

// Status is one report to central monitoring: the retained current state of the
// terminal and, with Event, the transition that produced it. Its JSON is the MQTT
// payload (docs/mqtt.md), where the reporter adds its sequence number; it
// carries masked card numbers only.
type Status struct {
	TID     string        `json:"tid"`
	MID     string        `json:"mid"`
	Serial  string        `json:"serial"`
	Version string        `json:"version,omitempty"`
	Step    Step          `json:"step"`
	State   string        `json:"state"` // StateRunning, StateDone, StateFailed, StateLive
	Attempt int           `json:"attempt"`
	Boot    int           `json:"boot"`
	Error   *Failure      `json:"error,omitempty"`
	Card    string        `json:"card,omitempty"` // masked
	SignOn  *SignOnRecord `json:"sign_on,omitempty"`
	Sale    *TxnRecord    `json:"sale,omitempty"`
	Void    *TxnRecord    `json:"void,omitempty"`
	// Unresolved is every message not settled with the host (masked): in
	// every report, so central sees a charge the terminal could not undo.
	Unresolved []ReversalNote `json:"unresolved,omitempty"`
	// The acquirer's procedure: downloads, the hosts' demands, settlement
	// and the business sign-on, as far as they went.
	CAPK       *DownloadRecord `json:"capk,omitempty"`
	Apps       *DownloadRecord `json:"ic_params,omitempty"`
	Demands    []DemandNote    `json:"demands,omitempty"`
	Settlement *SettleRecord   `json:"settlement,omitempty"`
	Business   *SignOnRecord   `json:"sign_on_business,omitempty"`
	Message    string          `json:"message,omitempty"` // one line for humans
	Time       time.Time       `json:"time"`
	// Clock says where Time (and every stamp the flow makes) comes from.
	Clock ClockSource `json:"clock,omitempty"`
}

// Report states.
const (
	StateRunning = "running" // the step has started
	StateDone    = "done"    // the step finished; the next one follows
	StateFailed  = "failed"  // the step failed; Error says why and what to do
	StateLive    = "live"    // the terminal takes payments
	StateReset   = "reset"   // an operator reset the install (a new identity); the last report of the old one
)

// ErrNoState is what a Store returns when no checkpoint was ever written: the
// only case that means a new install.
var ErrNoState = errors.New("provisioning: no state yet")
