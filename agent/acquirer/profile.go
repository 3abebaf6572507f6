package acquirer

import (
	"fmt"
	"slices"
	"sort"

	"github.com/posagent/posagent/provisioning"
)

// Profile is what differs from one acquirer to the next above the link: the
// 60.3 code of every message, the key mode, where the answer header carries
// the host's demand, what the acquirer requires after sign-on, its fallback
// policy, and the layouts of its terminal-parameter and status fields.
// Public UnionPay terminal applications agree on most codes but not all (one
// public app downloads terminal parameters with 364 where another uses
// 360), so none of this is hard-coded in the messages: it comes from here.
//
// The facts and their sources are in docs/acquirer-procedure.md.
type Profile struct {
	// Name is what host.profile in the config calls it.
	Name  string
	Codes Codes
	// KeyMode is the sign-on key mode the acquirer expects unless the
	// config names another.
	KeyMode KeyMode
	// DemandDigit is where the processing-requirement digit sits in the
	// answer's header, counted in BCD digits from 0: the header "60 31 00
	// 31 07 00" is 12 digits, class (0-1), version (2-3), terminal status
	// (4), processing requirement (5), sub-version (6-11). LiaoYang_POS reads
	// it as the 6th character of the header's digits (Src/tranproc.c,
	// OnlineDownOrUp: sPacketHead[5]).
	DemandDigit int
	// Requires lists the downloads the acquirer wants after every first
	// sign-on, as demands, in the order they are done; the host's demand
	// digit can ask for more at any time.
	Requires []provisioning.Demand
	// DomesticFallback lets a domestic (UnionPay, BIN 62) chip card whose
	// chip failed be read from its stripe. Off: UnionPay closed fallback for
	// domestic chip cards on 2017-05-01. Foreign cards may fall back.
	DomesticFallback bool
	// RemoteTMK is how the terminal master key comes from the host when
	// none is held: TMKNone (injected with posctl keys inject) or TMKRSA
	// (Client.DownloadTMK: the terminal's RSA public key out with
	// Codes.TMKKey, the TMK back under it, activated with Codes.TMKActivate;
	// docs/acquirer-procedure.md, "Remote TMK download").
	RemoteTMK TMKMethod
	// STANOnDownloads puts field 11 on the downloads, the end-of-download
	// messages and the status upload. Public apps send none there
	// (LiaoYang_POS Src/tranproc.c SetCommReqField; the Centerm app's
	// assets/BASE/message/union_pay.xml, DOWNLOAD_PARAMS and
	// POS_STATUS_UPLOAD), so their answers cannot echo one either.
	STANOnDownloads bool
	// ParamTags is the layout of the terminal-parameter download's field
	// 62: two ASCII digits of tag, then a value of the tag's width.
	ParamTags []ParamTag
	// StatusTags is the layout of the status upload's field 62, in order.
	StatusTags []ParamTag
}

// Codes are the 60.3 network-management codes, one per message.
type Codes struct {
	SignOnSingle    string // sign-on asking for single-DES keys: 001
	SignOnDouble    string // double-length keys without a TDK: 003
	SignOnDoubleTDK string // double-length keys with a TDK: 004
	SignOff         string // 002
	Echo            string // 301
	Settle          string // 0500: 201
	// BatchDetail is a batch-upload message of field-48 details (magnetic
	// stripe and other non-chip records): 201 in both public apps.
	BatchDetail        string
	BatchEndUnbalanced string // 0320 ending a batch upload after an unbalanced settlement: 202
	BatchEndBalanced   string // 207
	// ICUpload is a chip sale's TC upload (0320): 203, before settlement
	// and after a balanced one; ICUploadUnbalanced the same message as the
	// batch upload after an unbalanced settlement: 205. Both public apps use
	// these two (LiaoYang_POS Src/globalvar.c TrTable ICC_BATCHUP 203 and
	// Src/tranproc.c BatchSendICCOnLineTrans "不平送205，平送203"; the Centerm
	// app's task/AsyncUploadIcDataTask.java "对账平203，对账不平205").
	ICUpload           string
	ICUploadUnbalanced string
	// ScriptResult is the issuer-script result notice (0620): 951 in both
	// public apps (LiaoYang_POS Src/emvtranproc.c SendScriptResult; the
	// Centerm app's BaseField60.java, UPLOAD_SCRIPT_RESULT).
	ScriptResult string
	Params       string // terminal-parameter download (0800): 360
	// ParamsEnd ends the terminal-parameter download (0800) where the
	// acquirer has an end message: the Centerm app's 361
	// (DOWNLOAD_PARAMS_FINISHED, task/AsyncDownloadTerminalParamTask.java);
	// "" for none, as LiaoYang_POS (one exchange).
	ParamsEnd    string
	StatusUpload string // 0820: 362
	CAPKQuery    string // 0820: 372
	CAPKFetch    string // 0800: 370
	CAPKEnd      string // 0800: 371
	AIDQuery     string // 0820: 382
	AIDFetch     string // 0800: 380
	AIDEnd       string // 0800: 381
	// TMKKey sends the terminal's RSA public key and brings the TMK back
	// under it (0800: 352); TMKActivate tells the host the terminal holds it
	// (0800: 351). Used only by a profile with RemoteTMK set.
	TMKKey      string
	TMKActivate string
}

// SignOn is the code that asks for mode's keys.
func (c Codes) SignOn(mode KeyMode) string {
	switch mode {
	case SingleDES:
		return c.SignOnSingle
	case DoubleNoTDK:
		return c.SignOnDouble
	case DoubleDES:
		return c.SignOnDoubleTDK
	}
	return ""
}

// all lists the codes with their names, for validation.
func (c Codes) all() map[string]string {
	return map[string]string{
		"sign-on 001": c.SignOnSingle, "sign-on 003": c.SignOnDouble, "sign-on 004": c.SignOnDoubleTDK,
		"sign-off": c.SignOff, "echo": c.Echo, "settle": c.Settle, "batch detail": c.BatchDetail,
		"batch end unbalanced": c.BatchEndUnbalanced, "batch end balanced": c.BatchEndBalanced,
		"IC upload": c.ICUpload, "IC upload unbalanced": c.ICUploadUnbalanced, "script result": c.ScriptResult,
		"parameters": c.Params, "status upload": c.StatusUpload,
		"CAPK query": c.CAPKQuery, "CAPK fetch": c.CAPKFetch, "CAPK end": c.CAPKEnd,
		"AID query": c.AIDQuery, "AID fetch": c.AIDFetch, "AID end": c.AIDEnd,
	}
}

// TMKMethod is how the terminal master key reaches the terminal.
type TMKMethod string

// TMK methods.
const (
	// TMKNone: the TMK is injected (posctl keys inject); nothing asks the host.
	TMKNone TMKMethod = "none"
	// TMKRSA: the terminal downloads its TMK encrypted under its own RSA
	// key (RSAES-PKCS1-v1_5) and activates it once the check value matched.
	TMKRSA TMKMethod = "rsa"
)

// ParamTag is one tag of a terminal-parameter or status field: its two
// digits, the width of its value, whether the value is text (padded with
// spaces on the right; numbers are padded with zeros on the left), and for
// the status upload the value sent when the terminal has none of its own.
type ParamTag struct {
	Tag     string
	Width   int
	Text    bool
	Default string
}

// Tags the client acts on in the terminal-parameter download. Their meaning
// is LiaoYang_POS's (Src/tranproc.c, UpdateParameters): 12 is the
// communication wait (the host timeout, seconds), 22 the merchant's name
// (GBK), 23 the number of times a transaction (a reversal) is sent again.
const (
	paramHostTimeout  = "12"
	paramMerchantName = "22"
	paramResend       = "23"
)

// DefaultProfileName is the profile a config without host.profile gets.
const DefaultProfileName = "common"

// commonCodes are the codes three public UnionPay terminal apps and a public
// POSP agree on (PROTOCOLS.md, the install procedure): LiaoYang_POS
// Src/globalvar.c TrTable; the Centerm app's transcation/pos/data/
// BaseField60.java.
var commonCodes = Codes{
	SignOnSingle: "001", SignOnDouble: "003", SignOnDoubleTDK: "004",
	SignOff: "002", Echo: "301", Settle: "201", BatchDetail: "201",
	BatchEndUnbalanced: "202", BatchEndBalanced: "207",
	ICUpload: "203", ICUploadUnbalanced: "205", ScriptResult: "951",
	Params: "360", StatusUpload: "362",
	CAPKQuery: "372", CAPKFetch: "370", CAPKEnd: "371",
	AIDQuery: "382", AIDFetch: "380", AIDEnd: "381",
}

// commonParamTags are the terminal-parameter widths of LiaoYang_POS
// (Src/tranproc.c, UpdateParameters). 26 is four bytes of transaction
// switches, kept as hex.
var commonParamTags = []ParamTag{
	{Tag: "11", Width: 2}, {Tag: "12", Width: 2}, {Tag: "13", Width: 1},
	{Tag: "14", Width: 14, Text: true}, {Tag: "15", Width: 14, Text: true},
	{Tag: "16", Width: 14, Text: true}, {Tag: "17", Width: 14, Text: true},
	{Tag: "18", Width: 1, Text: true}, {Tag: "19", Width: 2}, {Tag: "20", Width: 1, Text: true},
	{Tag: "21", Width: 1, Text: true}, {Tag: "22", Width: 40, Text: true}, {Tag: "23", Width: 1},
	{Tag: "24", Width: 1, Text: true}, {Tag: "25", Width: 1}, {Tag: "26", Width: 4, Text: true},
}

// commonStatusTags is the status upload both public apps send, with their
// defaults (LiaoYang_POS Src/tranproc.c MakeTermStatusData; the Centerm
// app's BaseField62.java getTerminalState): 01-05 the hardware items (both
// report 1, working), 11-27 the parameters as the terminal holds them, 51
// the link statistics (12 digits). The telephone numbers (14-17) are blank:
// this terminal does not dial.
var commonStatusTags = []ParamTag{
	{Tag: "01", Width: 1, Default: "1"}, {Tag: "02", Width: 1, Default: "1"}, {Tag: "03", Width: 1, Default: "1"},
	{Tag: "04", Width: 1, Default: "1"}, {Tag: "05", Width: 1, Default: "1"},
	{Tag: "11", Width: 2, Default: "60"}, {Tag: "12", Width: 2, Default: "60"}, {Tag: "13", Width: 1, Default: "3"},
	{Tag: "14", Width: 14, Text: true}, {Tag: "15", Width: 14, Text: true},
	{Tag: "16", Width: 14, Text: true}, {Tag: "17", Width: 14, Text: true},
	{Tag: "18", Width: 1, Text: true, Default: "0"}, {Tag: "19", Width: 2, Default: "00"},
	{Tag: "20", Width: 1, Text: true, Default: "0"}, {Tag: "21", Width: 1, Text: true, Default: "0"},
	{Tag: "23", Width: 1, Default: "2"}, {Tag: "25", Width: 1, Default: "1"}, {Tag: "27", Width: 2, Default: "10"},
	{Tag: "51", Width: 12, Default: "000000000000"},
}

// profiles are the built-in profiles by name. LookupProfile hands out copies.
var profiles = map[string]Profile{
	"common": {
		Name: "common", Codes: commonCodes, KeyMode: DoubleDES, DemandDigit: 5,
		Requires:  []provisioning.Demand{provisioning.DemandCAPK, provisioning.DemandICParameters, provisioning.DemandParameters},
		RemoteTMK: TMKNone, ParamTags: commonParamTags, StatusTags: commonStatusTags,
	},
	// centerm is the public Centerm UnionPay app (bitian123/
	// HandSetWisdomCashier): its terminal-parameter download is 364 (360
	// is commented out beside it, transcation/pos/data/BaseField60.java),
	// ended by 361
	// with a wider parameter table (task/AsyncDownloadTerminalParamTask.java,
	// getSpdbParamLen). Its other codes are the common ones, the chip
	// notices' included (203/205 in task/AsyncUploadIcDataTask.java, 951
	// in BaseField60.java).
	"centerm": {
		Name: "centerm", Codes: func() Codes { c := commonCodes; c.Params, c.ParamsEnd = "364", "361"; return c }(),
		KeyMode: DoubleDES, DemandDigit: 5,
		Requires:  []provisioning.Demand{provisioning.DemandCAPK, provisioning.DemandICParameters, provisioning.DemandParameters},
		RemoteTMK: TMKNone, StatusTags: commonStatusTags,
		ParamTags: []ParamTag{
			{Tag: "01", Width: 2}, {Tag: "02", Width: 2}, {Tag: "03", Width: 2}, {Tag: "04", Width: 2}, {Tag: "05", Width: 2},
			{Tag: "11", Width: 2}, {Tag: "12", Width: 2}, {Tag: "13", Width: 1},
			{Tag: "14", Width: 14, Text: true}, {Tag: "15", Width: 14, Text: true},
			{Tag: "16", Width: 14, Text: true}, {Tag: "17", Width: 14, Text: true},
			{Tag: "18", Width: 1, Text: true}, {Tag: "19", Width: 2}, {Tag: "20", Width: 1, Text: true},
			{Tag: "21", Width: 1, Text: true}, {Tag: "22", Width: 40, Text: true}, {Tag: "23", Width: 1},
			{Tag: "24", Width: 1, Text: true}, {Tag: "25", Width: 2}, {Tag: "26", Width: 2, Text: true},
			{Tag: "27", Width: 3, Text: true}, {Tag: "28", Width: 2, Text: true},
			{Tag: "29", Width: 30, Text: true}, {Tag: "30", Width: 30, Text: true},
			{Tag: "31", Width: 2, Text: true}, {Tag: "32", Width: 2, Text: true}, {Tag: "33", Width: 2, Text: true},
			{Tag: "34", Width: 1, Text: true}, {Tag: "35", Width: 30, Text: true}, {Tag: "36", Width: 1, Text: true},
			{Tag: "37", Width: 25, Text: true}, {Tag: "38", Width: 25, Text: true}, {Tag: "39", Width: 2, Text: true},
			{Tag: "40", Width: 1, Text: true}, {Tag: "41", Width: 24, Text: true},
		},
	},
}

func init() {
	// remote-tmk is the common profile with the TMK downloaded under the
	// terminal's RSA key (PROTOCOLS.md, the install procedure, step 2: 352
	// then 351). No public source read ties that exchange to an acquirer
	// whose other codes differ, so it is the common table plus the method;
	// the facts and the choices are in docs/acquirer-procedure.md.
	p := profiles["common"]
	p.Name, p.RemoteTMK = "remote-tmk", TMKRSA
	p.Codes.TMKKey, p.Codes.TMKActivate = "352", "351"
	p.Requires = slices.Clone(p.Requires)
	profiles[p.Name] = p
}

// ProfileNames lists the built-in profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupProfile returns a copy of the built-in profile name; "" is the
// default profile.
func LookupProfile(name string) (Profile, bool) {
	if name == "" {
		name = DefaultProfileName
	}
	p, ok := profiles[name]
	if !ok {
		return Profile{}, false
	}
	p.Requires = slices.Clone(p.Requires)
	p.ParamTags = slices.Clone(p.ParamTags)
	p.StatusTags = slices.Clone(p.StatusTags)
	return p, true
}

// DefaultProfile is the common profile.
func DefaultProfile() Profile {
	p, _ := LookupProfile(DefaultProfileName)
	return p
}

// Validate checks that every code is three digits and the layouts can be
// used, so a hand-made profile fails at NewClient rather than on the wire.
func (p Profile) Validate() error {
	for name, code := range p.Codes.all() {
		if !isDigits(code, 3) {
			return fmt.Errorf("acquirer: profile %s: %s code %q is not 3 digits", p.Name, name, code)
		}
	}
	if p.Codes.ParamsEnd != "" && !isDigits(p.Codes.ParamsEnd, 3) {
		return fmt.Errorf("acquirer: profile %s: parameters end code %q is not 3 digits", p.Name, p.Codes.ParamsEnd)
	}
	if !p.KeyMode.supported() {
		return fmt.Errorf("acquirer: profile %s: key mode %q is not supported", p.Name, p.KeyMode)
	}
	if p.DemandDigit < 0 || p.DemandDigit >= 2*len(Header{}) {
		return fmt.Errorf("acquirer: profile %s: demand digit %d is outside the header", p.Name, p.DemandDigit)
	}
	switch p.RemoteTMK {
	case TMKNone:
	case TMKRSA:
		codes := p.Codes.all()
		for name, code := range map[string]string{"TMK key": p.Codes.TMKKey, "TMK activation": p.Codes.TMKActivate} {
			if !isDigits(code, 3) {
				return fmt.Errorf("acquirer: profile %s: %s code %q is not 3 digits", p.Name, name, code)
			}
			for other, c := range codes {
				if c == code {
					return fmt.Errorf("acquirer: profile %s: %s code %s is also the %s code", p.Name, name, code, other)
				}
			}
		}
		if p.Codes.TMKKey == p.Codes.TMKActivate {
			return fmt.Errorf("acquirer: profile %s: TMK key and activation share code %s", p.Name, p.Codes.TMKKey)
		}
	default:
		return fmt.Errorf("acquirer: profile %s: remote TMK method %q is not supported", p.Name, p.RemoteTMK)
	}
	for _, set := range []struct {
		name string
		tags []ParamTag
	}{{"parameter", p.ParamTags}, {"status", p.StatusTags}} {
		seen := map[string]bool{}
		for _, t := range set.tags {
			if !isDigits(t.Tag, 2) || t.Width < 1 || t.Width > 99 || seen[t.Tag] || len(t.Default) > t.Width {
				return fmt.Errorf("acquirer: profile %s: %s tag %q is not usable", p.Name, set.name, t.Tag)
			}
			seen[t.Tag] = true
		}
	}
	return nil
}

// Demand reads the processing-requirement digit of an answer's header. A
// digit the client does not know (8, 9, or a nibble above 9) is returned as
// it is: the host asked for something, and whoever runs the demands decides
// what an unknown one means.
func (p Profile) Demand(h Header) provisioning.Demand {
	d := p.DemandDigit
	if d < 0 || d >= 2*len(h) {
		return provisioning.DemandNone
	}
	b := h[d/2]
	if d%2 == 0 {
		return provisioning.Demand(b >> 4)
	}
	return provisioning.Demand(b & 0x0F)
}

func (p Profile) paramTag(tag string) (ParamTag, bool) {
	for _, t := range p.ParamTags {
		if t.Tag == tag {
			return t, true
		}
	}
	return ParamTag{}, false
}
