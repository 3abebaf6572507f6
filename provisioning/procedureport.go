package provisioning

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"github.com/posagent/posagent/provisioning/pan"
	"time"
)

// Demand is what a host's answer asks of the terminal before its next
// transaction: the processing-requirement digit of the response header
// (docs: PROTOCOLS.md, "Framing"). Public UnionPay terminal applications
// record it and run the work first; so does the flow, and it persists a
// demand until the work is done.
type Demand int

// The digits a host sends. 0 asks for nothing.
const (
	DemandNone         Demand = 0
	DemandParameters   Demand = 1 // download terminal parameters
	DemandStatusUpload Demand = 2 // upload the terminal's status
	DemandSignOn       Demand = 3 // sign on again (new working keys)
	DemandCAPK         Demand = 4 // download IC public keys
	DemandICParameters Demand = 5 // download IC (AID) parameters
	DemandTMS          Demand = 6 // application download (TMS): not the install's to do
	DemandBlacklist    Demand = 7 // blacklist download
)

func (d Demand) String() string {
	switch d {
	case DemandNone:
		return "none"
	case DemandParameters:
		return "terminal-parameters"
	case DemandStatusUpload:
		return "status-upload"
	case DemandSignOn:
		return "sign-on"
	case DemandCAPK:
		return "capk"
	case DemandICParameters:
		return "ic-parameters"
	case DemandTMS:
		return "tms"
	case DemandBlacklist:
		return "blacklist"
	}
	return fmt.Sprintf("demand(%d)", int(d))
}

// AdminRequest is what every message of the acquirer's procedure carries.
type AdminRequest struct {
	Terminal Terminal
	STAN     int
	Batch    string // the terminal's current batch (60.2)
}

// Ack is a host's answer to a procedure message that returns nothing but
// its code. A Host returns one only for an answer that matched its request
// and whose MAC verified where the message is MACed.
type Ack struct {
	RC     string
	Demand Demand
	Time   time.Time // the host's date and time (12/13) when it sent them
}

// ListRequest asks for one page of a list the host keeps (CA public keys,
// applications): From is how many entries the terminal already holds from
// earlier pages.
type ListRequest struct {
	AdminRequest
	From int
}

// CAPKID names a certification authority public key: the scheme's RID
// (9F06, 5 bytes) and the key index (9F22), with its expiry (DF05, YYYYMMDD
// or YYMMDD as the host sends it) when the host lists one.
type CAPKID struct {
	RID    []byte `json:"rid"`
	Index  byte   `json:"index"`
	Expiry string `json:"expiry,omitempty"`
}

func (id CAPKID) String() string { return fmt.Sprintf("%X/%02X", id.RID, id.Index) }

// KeyList is one page of the host's CA public keys.
type KeyList struct {
	RC     string
	Keys   []CAPKID
	More   bool // another page follows
	Demand Demand
}

// KeyRequest asks for one CA public key.
type KeyRequest struct {
	AdminRequest
	Key CAPKID
}

// CAPK is a certification authority public key, as the host delivers it for
// offline data authentication (EMV Book 2, 5.2 and Annex B).
type CAPK struct {
	RID      []byte `json:"rid"`       // 9F06
	Index    byte   `json:"index"`     // 9F22
	Expiry   string `json:"expiry"`    // DF05
	HashAlgo byte   `json:"hash_algo"` // DF06: 01 SHA-1
	KeyAlgo  byte   `json:"key_algo"`  // DF07: 01 RSA
	Modulus  []byte `json:"modulus"`   // DF02
	Exponent []byte `json:"exponent"`  // DF04: 03 or 010001
	Checksum []byte `json:"checksum"`  // DF03: SHA-1 of RID, index, modulus, exponent
}

// ID names the key.
func (k CAPK) ID() CAPKID { return CAPKID{RID: k.RID, Index: k.Index, Expiry: k.Expiry} }

// ErrCAPKChecksum is a CA public key whose checksum does not match its
// contents: damaged on the way or on disk, it must not be used.
var ErrCAPKChecksum = errors.New("CA public key checksum mismatch")

// Verify checks the key's checksum (DF03): SHA-1 over RID, index, modulus
// and exponent, the EMV definition.
func (k CAPK) Verify() error {
	if len(k.RID) != 5 || len(k.Modulus) == 0 || len(k.Exponent) == 0 {
		return fmt.Errorf("CA public key %s: incomplete", k.ID())
	}
	h := sha1.New()
	h.Write(k.RID)
	h.Write([]byte{k.Index})
	h.Write(k.Modulus)
	h.Write(k.Exponent)
	if !bytes.Equal(h.Sum(nil), k.Checksum) {
		return fmt.Errorf("%w: %s", ErrCAPKChecksum, k.ID())
	}
	return nil
}

// KeyResult is the host's answer to a KeyRequest.
type KeyResult struct {
	RC     string
	Key    CAPK
	Demand Demand
}

// AppList is one page of the applications (AIDs) the host has IC
// parameters for.
type AppList struct {
	RC     string
	AIDs   [][]byte
	More   bool
	Demand Demand
}

// AppRequest asks for one application's IC parameters.
type AppRequest struct {
	AdminRequest
	AID []byte
}

// AppParams are one application's IC parameters: what the EMV kernel uses
// for it (selection, terminal action analysis, risk management).
type AppParams struct {
	AID              []byte `json:"aid"`                    // 9F06
	PartialMatch     bool   `json:"partial_match"`          // DF01 = 0: the AID may be a prefix of the card's
	Version          []byte `json:"version,omitempty"`      // 9F09
	TACDefault       []byte `json:"tac_default"`            // DF11
	TACOnline        []byte `json:"tac_online"`             // DF12
	TACDenial        []byte `json:"tac_denial"`             // DF13
	FloorLimit       int64  `json:"floor_limit"`            // 9F1B, minor units
	Threshold        int64  `json:"threshold"`              // DF15, random selection threshold
	MaxTargetPercent int    `json:"max_target_percent"`     // DF16
	TargetPercent    int    `json:"target_percent"`         // DF17
	DefaultDDOL      []byte `json:"default_ddol,omitempty"` // DF14
	OnlinePIN        bool   `json:"online_pin"`             // DF18
	// The contactless (qPBOC) reader limits, minor units: DF19 the
	// contactless floor limit, DF20 the contactless transaction limit (above
	// it the card must be inserted or swiped), DF21 the CVM required limit.
	// The public POSPs append them to the application's parameters; nil
	// when the acquirer sent none (no limit).
	CLFloorLimit       *int64 `json:"cl_floor_limit,omitempty"`
	CLTransactionLimit *int64 `json:"cl_transaction_limit,omitempty"`
	CVMLimit           *int64 `json:"cvm_limit,omitempty"`
}

// AppResult is the host's answer to an AppRequest.
type AppResult struct {
	RC     string
	App    AppParams
	Demand Demand
}

// TerminalParams are what the host's terminal-parameter download sets: from
// then on the terminal uses these, not its config's.
type TerminalParams struct {
	MerchantName string        `json:"merchant_name,omitempty"`
	HostTimeout  time.Duration `json:"host_timeout,omitempty"`
	// MaxReversals is how often a reversal is sent before it is given up
	// to an operator.
	MaxReversals int `json:"max_reversals,omitempty"`
	// Other keeps what the host sent that the terminal does not act on,
	// by the host's tag, for the status upload and the log.
	Other map[string]string `json:"other,omitempty"`
}

// ParamsResult is the host's answer to a terminal-parameter download.
type ParamsResult struct {
	RC     string
	Params TerminalParams
	Demand Demand
}

// StatusUpload reports the terminal's settings and counters to the host.
type StatusUpload struct {
	AdminRequest
	Params TerminalParams
}

// Totals are one side of a batch as settlement counts it: how many and how
// much (minor units).
type Totals struct {
	DebitCount   int   `json:"debit_count"`
	DebitAmount  int64 `json:"debit_amount"`
	CreditCount  int   `json:"credit_count"`
	CreditAmount int64 `json:"credit_amount"`
}

// SettleRequest closes the batch (0500): the terminal's totals for domestic
// and foreign cards (field 48).
type SettleRequest struct {
	AdminRequest
	Domestic, Foreign Totals
}

// SettleResult is the host's answer: whether its totals agree with the
// terminal's, each side; an unbalanced side is followed by a batch upload.
type SettleResult struct {
	RC                                string
	DomesticBalanced, ForeignBalanced bool
	Demand                            Demand
	Time                              time.Time
	// NextBatch is the batch the host opens next when its answer names
	// one (60.2); "" leaves the terminal to count on (the settled batch + 1),
	// and the sign-on for business's answer says the last word.
	NextBatch string
}

// BatchUpload sends the batch's transactions one by one after an
// unbalanced settlement (0320).
type BatchUpload struct {
	AdminRequest
	Txn  TxnRecord
	Kind string // "sale", "void"
	// Card is the card number the record carries (the sale's, opened from
	// its seal); zero when the terminal has none to give.
	Card pan.PAN
}

// TCUpload sends a chip sale's TC before settlement (0320, the profile's
// IC batch code: 203 in the common table): field 55 is the second GENERATE
// AC's set (Txn.IC.TC), so the issuer holds the card's own proof of the
// sale.
type TCUpload struct {
	AdminRequest
	Txn  TxnRecord
	Card pan.PAN // the sale's card number, opened from its seal
}

// ScriptNotice tells the issuer how its scripts ran on the card (0620, the
// profile's script-result code: 951): DF31 of the sale (Txn.IC.Scripts)
// with the objects that identify the transaction.
type ScriptNotice struct {
	AdminRequest
	Txn  TxnRecord
	Card pan.PAN
}

// BatchEnd ends a batch upload: Balanced says whether settlement had
// balanced (the end message's code differs), Count how many went up.
type BatchEnd struct {
	AdminRequest
	Balanced bool
	Count    int
}

// AcquirerProcedure is the acquirer's side of the install beyond sign-on
// and sales: the downloads after sign-on (CA public keys, IC parameters,
// terminal parameters), the status upload, settlement with its batch
// upload, and sign-off. Each call is one exchange. Its message codes come
// from the acquirer's profile.
type AcquirerProcedure interface {
	ListKeys(ctx context.Context, r ListRequest) (KeyList, error)
	FetchKey(ctx context.Context, r KeyRequest) (KeyResult, error)
	EndKeys(ctx context.Context, r AdminRequest) (Ack, error)

	ListApps(ctx context.Context, r ListRequest) (AppList, error)
	FetchApp(ctx context.Context, r AppRequest) (AppResult, error)
	EndApps(ctx context.Context, r AdminRequest) (Ack, error)

	TerminalParameters(ctx context.Context, r AdminRequest) (ParamsResult, error)
	UploadStatus(ctx context.Context, r StatusUpload) (Ack, error)

	UploadTC(ctx context.Context, r TCUpload) (Ack, error)
	NotifyScripts(ctx context.Context, r ScriptNotice) (Ack, error)
	Settle(ctx context.Context, r SettleRequest) (SettleResult, error)
	UploadBatch(ctx context.Context, r BatchUpload) (Ack, error)
	EndBatchUpload(ctx context.Context, r BatchEnd) (Ack, error)

	SignOff(ctx context.Context, r AdminRequest) (Ack, error)
}
