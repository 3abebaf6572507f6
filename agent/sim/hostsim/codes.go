package hostsim

import (
	"fmt"
	"slices"
	"sort"
)

// CodeTable is an acquirer's list of 60.3 codes (network-management and
// transaction codes): which code asks for which procedure, and the code the
// host answers it with. The codes are not uniform across acquirers, so every
// code hostsim reads or answers comes from the table in Config.Codes, and its
// Name is on the ledger next to the code used.
type CodeTable struct {
	Name string
	// Sign-on key modes: single-length keys, double-length without a TDK,
	// double-length with a TDK.
	SignOnSingle, SignOnDouble, SignOnDoubleTDK string
	SignOff                                     string
	Echo                                        string
	// Settle is the settlement's code (0500).
	Settle string
	// BatchMag is a batch upload of magstripe transactions (0320, field 48 a
	// list); BatchIC are the per-transaction uploads of chip transactions
	// (TC upload and its siblings).
	BatchMag string
	BatchIC  []string
	// TCUpload is the code among BatchIC of a chip sale's TC upload (0320),
	// sent before settlement and after a balanced one: the host checks the
	// TC against the sale it approved. The others of BatchIC (205 after an
	// unbalanced settlement) are batch upload records.
	TCUpload string
	// ScriptResult is the issuer-script result notice (0620).
	ScriptResult string
	// The end of the batch upload after an unbalanced or a balanced settlement.
	BatchEndUnbalanced, BatchEndBalanced string
	// ParamWidths are the parameter download's value widths where this
	// acquirer's differ from LiaoYang_POS's (paramLen).
	ParamWidths map[string]int
	// Params is the terminal parameter download (0800); ParamsEnd its end
	// message where the acquirer has one ("" when the download is one exchange).
	Params, ParamsEnd string
	// Status is the terminal status upload (0820).
	Status string
	// IC public keys: the query (0820), one download per key (0800), the end (0800).
	CAPKQuery, CAPKDownload, CAPKEnd string
	// IC (AID) parameters: query, download per AID, end.
	ICQuery, ICDownload, ICEnd string
	// The remote TMK download (0800): the terminal's public key out and the
	// TMK back, then its activation. "" where the acquirer has none; they
	// are answered only with Config.TMKDownload.
	TMKKey, TMKActivate string
}

// TableUnionPay is the code table three public UnionPay terminal apps and a
// public POSP agree on: LiaoYang_POS Src/globalvar.c (TrTable), chinaljp/posp
// trunk/src/lib/in-manager/posd1.9/packmsg.c (g_staTranTbl) and the Nexgo
// template x-lugoo/ads-basic-app-init ads-basic-app-print/src/settle.c.
// The TC upload is 203 and the script result notice 951 in LiaoYang_POS
// (TrTable ICC_BATCHUP; Src/emvtranproc.c SendScriptResult) and in the
// Centerm app (task/AsyncUploadIcDataTask.java; BaseField60.java).
var TableUnionPay = CodeTable{
	Name:         "unionpay",
	SignOnSingle: "001", SignOnDouble: "003", SignOnDoubleTDK: "004",
	SignOff: "002", Echo: "301",
	Settle: "201", BatchMag: "201", BatchIC: []string{"203", "204", "205", "206"},
	TCUpload: "203", ScriptResult: "951",
	BatchEndUnbalanced: "202", BatchEndBalanced: "207",
	Params: "360", Status: "362",
	CAPKQuery: "372", CAPKDownload: "370", CAPKEnd: "371",
	ICQuery: "382", ICDownload: "380", ICEnd: "381",
	TMKKey: "352", TMKActivate: "351",
}

// TableIC351 ends the IC parameter download with 351 instead of 381, as
// PROTOCOLS.md reports of one public terminal app (the source is not named
// there; the other public apps and POSPs read here all use 381).
var TableIC351 = withName(TableUnionPay, "ic-end-351", func(t *CodeTable) {
	// The same source's 351 activates a downloaded TMK; an acquirer that
	// ends its IC download with it cannot use it for both.
	t.ICEnd, t.TMKKey, t.TMKActivate = "351", "", ""
})

// TableCenterm is the public Centerm UnionPay app's table
// (bitian123/HandSetWisdomCashier library/src/main/java/com/centerm/epos/
// transcation/pos/data/BaseField60.java): its terminal parameter download is
// 364 and is ended by 361 (DOWNLOAD_PARAMS_FINISHED), and its key index
// (tag 25) is two digits (task/AsyncDownloadTerminalParamTask.java,
// getSpdbParamLen).
var TableCenterm = withName(TableUnionPay, "centerm", func(t *CodeTable) {
	t.Params, t.ParamsEnd = "364", "361"
	t.ParamWidths = map[string]int{"25": 2}
})

func withName(t CodeTable, name string, f func(*CodeTable)) CodeTable {
	t.Name = name
	t.BatchIC = slices.Clone(t.BatchIC)
	f(&t)
	return t
}

// CodeTables are the built-in tables by name (the --codes flag).
var CodeTables = map[string]CodeTable{
	TableUnionPay.Name: TableUnionPay,
	TableIC351.Name:    TableIC351,
	TableCenterm.Name:  TableCenterm,
}

// CodeTableNames lists CodeTables' names, sorted, for flag help.
func CodeTableNames() []string {
	var out []string
	for n := range CodeTables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Message kinds of the install procedure, the keys of fault injection and of
// the demand schedule.
const (
	KindCAPKQuery    = "capk-query"    // 0820, CAPKQuery
	KindCAPKDownload = "capk-download" // 0800, CAPKDownload
	KindCAPKEnd      = "capk-end"      // 0800, CAPKEnd
	KindICQuery      = "ic-query"      // 0820, ICQuery
	KindICDownload   = "ic-download"   // 0800, ICDownload
	KindICEnd        = "ic-end"        // 0800, ICEnd
	KindParams       = "params"        // 0800, Params
	KindParamsEnd    = "params-end"    // 0800, ParamsEnd
	KindStatus       = "status"        // 0820, Status
	KindSettle       = "settle"        // 0500, Settle
	KindBatchUpload  = "batch-upload"  // 0320, BatchMag or BatchIC
	KindBatchEnd     = "batch-end"     // 0320, BatchEndUnbalanced or BatchEndBalanced
	KindTCUpload     = "tc-upload"     // 0320, TCUpload
	KindScriptResult = "script-result" // 0620, ScriptResult
	KindTMKKey       = "tmk-key"       // 0800, TMKKey
	KindTMKActivate  = "tmk-activate"  // 0800, TMKActivate
)

// Kinds lists every message kind, for fault parsing and flag help.
var Kinds = []string{KindSignOn, KindEcho, KindSignOff, KindSale, KindVoid, KindReversal,
	KindCAPKQuery, KindCAPKDownload, KindCAPKEnd, KindICQuery, KindICDownload, KindICEnd,
	KindParams, KindParamsEnd, KindStatus, KindSettle, KindBatchUpload, KindBatchEnd,
	KindTMKKey, KindTMKActivate, KindTCUpload, KindScriptResult}

func (t CodeTable) check() error {
	for name, c := range map[string]string{"sign-on single": t.SignOnSingle, "sign-on double": t.SignOnDouble,
		"sign-on double with TDK": t.SignOnDoubleTDK, "sign-off": t.SignOff, "echo": t.Echo, "settle": t.Settle,
		"batch upload": t.BatchMag, "batch end unbalanced": t.BatchEndUnbalanced, "batch end balanced": t.BatchEndBalanced,
		"params": t.Params, "status": t.Status, "capk query": t.CAPKQuery, "capk download": t.CAPKDownload,
		"capk end": t.CAPKEnd, "ic query": t.ICQuery, "ic download": t.ICDownload, "ic end": t.ICEnd,
		"tc upload": t.TCUpload, "script result": t.ScriptResult} {
		if len(c) != 3 {
			return fmt.Errorf("hostsim: code table %q: %s code %q is not 3 digits", t.Name, name, c)
		}
	}
	if !slices.Contains(t.BatchIC, t.TCUpload) {
		return fmt.Errorf("hostsim: code table %q: TC upload code %q is not one of the IC batch codes %v", t.Name, t.TCUpload, t.BatchIC)
	}
	if t.ParamsEnd != "" && len(t.ParamsEnd) != 3 {
		return fmt.Errorf("hostsim: code table %q: params end code %q is not 3 digits", t.Name, t.ParamsEnd)
	}
	if (t.TMKKey == "") != (t.TMKActivate == "") || t.TMKKey != "" && (len(t.TMKKey) != 3 || len(t.TMKActivate) != 3 || t.TMKKey == t.TMKActivate) {
		return fmt.Errorf("hostsim: code table %q: TMK codes %q and %q are not two distinct 3-digit codes", t.Name, t.TMKKey, t.TMKActivate)
	}
	if t.TMKKey != "" {
		for _, c := range []string{t.SignOnSingle, t.SignOnDouble, t.SignOnDoubleTDK, t.CAPKDownload, t.CAPKEnd, t.ICDownload, t.ICEnd, t.Params, t.ParamsEnd} {
			if c == t.TMKKey || c == t.TMKActivate {
				return fmt.Errorf("hostsim: code table %q: TMK code %s is taken by another 0800", t.Name, c)
			}
		}
	}
	return nil
}

// kind classifies a request by its MTI, 60.3 code and (for 0200) processing
// code. Management messages whose code the table does not know keep the
// simulator's old reading (0800 a sign-on, answered 12 for an unknown key
// mode; 0820 an echo), which terminals without 60 on their echo rely on.
func (t CodeTable) kind(mti, code, pc string) string {
	switch mti {
	case "0800":
		switch code {
		case t.CAPKDownload:
			return KindCAPKDownload
		case t.CAPKEnd:
			return KindCAPKEnd
		case t.ICDownload:
			return KindICDownload
		case t.ICEnd:
			return KindICEnd
		case t.Params:
			return KindParams
		}
		if t.TMKKey != "" {
			switch code {
			case t.TMKKey:
				return KindTMKKey
			case t.TMKActivate:
				return KindTMKActivate
			}
		}
		if t.ParamsEnd != "" && code == t.ParamsEnd {
			return KindParamsEnd
		}
		return KindSignOn
	case "0820":
		switch code {
		case t.SignOff:
			return KindSignOff
		case t.CAPKQuery:
			return KindCAPKQuery
		case t.ICQuery:
			return KindICQuery
		case t.Status:
			return KindStatus
		}
		return KindEcho
	case "0500":
		return KindSettle
	case "0320":
		switch code {
		case t.BatchEndBalanced, t.BatchEndUnbalanced:
			return KindBatchEnd
		case t.TCUpload:
			return KindTCUpload
		}
		return KindBatchUpload
	case "0620":
		return KindScriptResult
	case "0200":
		switch pc {
		case "000000":
			return KindSale
		case "200000":
			return KindVoid
		}
	case "0400":
		return KindReversal
	}
	return ""
}

// code is the 60.3 the host answers a management kind with.
func (t CodeTable) code(kind string) string {
	switch kind {
	case KindSignOff:
		return t.SignOff
	case KindEcho:
		return t.Echo
	case KindCAPKQuery:
		return t.CAPKQuery
	case KindCAPKDownload:
		return t.CAPKDownload
	case KindCAPKEnd:
		return t.CAPKEnd
	case KindICQuery:
		return t.ICQuery
	case KindICDownload:
		return t.ICDownload
	case KindICEnd:
		return t.ICEnd
	case KindParams:
		return t.Params
	case KindParamsEnd:
		return t.ParamsEnd
	case KindStatus:
		return t.Status
	case KindSettle:
		return t.Settle
	}
	return ""
}
