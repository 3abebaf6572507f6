package acquirer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/moov-io/bertlv"
	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// The acquirer's procedure after sign-on (provisioning.AcquirerProcedure):
// CA public keys, IC parameters, terminal parameters, the status upload,
// settlement with its batch upload, and sign-off (in messages.go). The wire
// formats and their public sources are in docs/acquirer-procedure.md; each
// message's 60.3 code is the profile's.
//
// None of these requests carries field 64: neither public app MACs a
// management message. An answer that carries one anyway must verify
// (macAnswer). Every answer must match its request's MTI, TID, MID and,
// where the request has one, STAN (exchange); an answer that does not, or
// whose field 62 or 48 does not parse, is an error, never a result.

// ErrNotListed is a download the host answers without the entry asked for:
// the host listed a CA key or an application it then cannot deliver.
var ErrNotListed = errors.New("acquirer: the host has no such entry")

// ErrBatchPAN refuses a batch upload without the card number: every public
// format carries it (field 48's details, or field 2 of an IC TC upload).
// Nothing was sent.
var ErrBatchPAN error = &codedError{code: "E_BATCH_UPLOAD", msg: "acquirer: invalid request: a batch upload needs the card number, and the request has none", wrap: ErrRequest}

// ErrBatchChip refuses the TC upload, or the batch upload, of a chip sale
// whose record carries no TC (Txn.IC.TC): the public apps send a chip sale
// as its TC with field 55 (60.3 203/205, LiaoYang_POS
// BatchSendICCOnLineTrans), from the card's second GENERATE AC. Nothing
// was sent.
var ErrBatchChip error = &codedError{code: "E_BATCH_UPLOAD", msg: "acquirer: invalid request: a chip sale goes up as its TC (field 55), which the record does not carry", wrap: ErrRequest}

// admin starts a management message: the MTI, field 11 when withSTAN, the
// terminal (41, 42) and field 60 (00, the batch, code). An empty batch is
// the one the host gave at sign-on.
func (c *Client) admin(mti, code string, r provisioning.AdminRequest, withSTAN bool) (*iso8583.Message, error) {
	m := NewMessage(mti)
	if withSTAN {
		if err := setSTAN(m, r.STAN); err != nil {
			return nil, err
		}
	}
	if err := c.setTerminal(m, r.Terminal); err != nil {
		return nil, err
	}
	batch := r.Batch
	if batch == "" {
		batch = c.batch
	}
	if !isDigits(batch, 6) {
		return nil, &FieldError{Op: "pack", Field: 60}
	}
	if err := Set(m, 60, Field60{Type: "00", Batch: batch, Code: code}.String()); err != nil {
		return nil, err
	}
	return m, nil
}

// download starts a download or status message: field 11 only where the
// profile wants it there.
func (c *Client) download(mti, code string, r provisioning.AdminRequest) (*iso8583.Message, error) {
	return c.admin(mti, code, r, c.cfg.Profile.STANOnDownloads)
}

func (c *Client) ack(r reply) provisioning.Ack {
	return provisioning.Ack{RC: Get(r.m, 39), Demand: r.demand, Time: c.hostTime(r.m)}
}

// answerErr is a well-framed answer whose content cannot be used: the
// flow's E_DOWNLOAD_DATA ("sent data the terminal cannot use"), not "no
// answer".
func answerErr(op string, err error) error {
	return &badAnswerError{ExchangeError{Op: op, Sent: true, Err: err}}
}

type badAnswerError struct{ ExchangeError }

func (e *badAnswerError) FailureCode() string { return "E_DOWNLOAD_DATA" }

// Unwrap keeps the ExchangeError (and its cause) reachable with errors.As.
func (e *badAnswerError) Unwrap() error { return &e.ExchangeError }

// listQuery is field 62 of a list query: "1" and how many entries the
// terminal holds from earlier pages, two digits (LiaoYang_POS
// QueryEmvCapk/QueryEmvParam: "1%02d").
func listQuery(m *iso8583.Message, from int) error {
	if from < 0 || from > 99 {
		return &FieldError{Op: "pack", Field: 62}
	}
	return SetBytes(m, 62, fmt.Appendf(nil, "1%02d", from))
}

// ListKeys asks for one page of the host's CA public keys (0820, 372).
func (c *Client) ListKeys(ctx context.Context, r provisioning.ListRequest) (provisioning.KeyList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.download("0820", c.cfg.Profile.Codes.CAPKQuery, r.AdminRequest)
	if err != nil {
		return provisioning.KeyList{}, err
	}
	if err := listQuery(m, r.From); err != nil {
		return provisioning.KeyList{}, err
	}
	resp, err := c.exchange(ctx, "capk-list", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.KeyList{}, err
	}
	out := provisioning.KeyList{RC: Get(resp.m, 39), Demand: resp.demand}
	if out.RC != "00" {
		return out, nil
	}
	if out.Keys, out.More, err = parseCAPKList(GetBytes(resp.m, 62)); err != nil {
		return out, answerErr("capk-list", err)
	}
	return out, nil
}

// FetchKey downloads one CA public key (0800, 370; field 62 = 9F06 RID and
// 9F22 index, LiaoYang_POS DownLoadCAPK). The key is returned only when it
// is the one asked for and its checksum verifies (CAPK.Verify).
func (c *Client) FetchKey(ctx context.Context, r provisioning.KeyRequest) (provisioning.KeyResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(r.Key.RID) != 5 {
		return provisioning.KeyResult{}, &FieldError{Op: "pack", Field: 62}
	}
	m, err := c.download("0800", c.cfg.Profile.Codes.CAPKFetch, r.AdminRequest)
	if err != nil {
		return provisioning.KeyResult{}, err
	}
	q, err := bertlv.Encode([]bertlv.TLV{bertlv.NewTag("9F06", r.Key.RID), bertlv.NewTag("9F22", []byte{r.Key.Index})})
	if err != nil {
		return provisioning.KeyResult{}, &FieldError{Op: "pack", Field: 62}
	}
	if err := SetBytes(m, 62, q); err != nil {
		return provisioning.KeyResult{}, err
	}
	resp, err := c.exchange(ctx, "capk", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.KeyResult{}, err
	}
	out := provisioning.KeyResult{RC: Get(resp.m, 39), Demand: resp.demand}
	if out.RC != "00" {
		return out, nil
	}
	if out.Key, err = parseCAPK(GetBytes(resp.m, 62), r.Key); err != nil {
		c.cfg.Log.Warn("CA public key refused", "key", r.Key.String(), "err", err)
		return out, answerErr("capk", err)
	}
	return out, nil
}

// EndKeys ends the CA public key download (0800, 371).
func (c *Client) EndKeys(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	return c.simple(ctx, "capk-end", "0800", c.cfg.Profile.Codes.CAPKEnd, r)
}

// ListApps asks for one page of the applications the host has IC
// parameters for (0820, 382).
func (c *Client) ListApps(ctx context.Context, r provisioning.ListRequest) (provisioning.AppList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.download("0820", c.cfg.Profile.Codes.AIDQuery, r.AdminRequest)
	if err != nil {
		return provisioning.AppList{}, err
	}
	if err := listQuery(m, r.From); err != nil {
		return provisioning.AppList{}, err
	}
	resp, err := c.exchange(ctx, "aid-list", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.AppList{}, err
	}
	out := provisioning.AppList{RC: Get(resp.m, 39), Demand: resp.demand}
	if out.RC != "00" {
		return out, nil
	}
	if out.AIDs, out.More, err = parseAIDList(GetBytes(resp.m, 62)); err != nil {
		return out, answerErr("aid-list", err)
	}
	return out, nil
}

// FetchApp downloads one application's IC parameters (0800, 380; field 62
// = 9F06 AID, LiaoYang_POS DownLoadEmvParam).
func (c *Client) FetchApp(ctx context.Context, r provisioning.AppRequest) (provisioning.AppResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(r.AID) < 5 || len(r.AID) > 16 {
		return provisioning.AppResult{}, &FieldError{Op: "pack", Field: 62}
	}
	m, err := c.download("0800", c.cfg.Profile.Codes.AIDFetch, r.AdminRequest)
	if err != nil {
		return provisioning.AppResult{}, err
	}
	q, err := bertlv.Encode([]bertlv.TLV{bertlv.NewTag("9F06", r.AID)})
	if err != nil {
		return provisioning.AppResult{}, &FieldError{Op: "pack", Field: 62}
	}
	if err := SetBytes(m, 62, q); err != nil {
		return provisioning.AppResult{}, err
	}
	resp, err := c.exchange(ctx, "aid", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.AppResult{}, err
	}
	out := provisioning.AppResult{RC: Get(resp.m, 39), Demand: resp.demand}
	if out.RC != "00" {
		return out, nil
	}
	if out.App, err = parseAppParams(GetBytes(resp.m, 62), r.AID); err != nil {
		return out, answerErr("aid", err)
	}
	return out, nil
}

// EndApps ends the IC parameter download (0800, 381).
func (c *Client) EndApps(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	return c.simple(ctx, "aid-end", "0800", c.cfg.Profile.Codes.AIDEnd, r)
}

// TerminalParameters downloads the terminal's parameters (0800, 360): field
// 62 of the answer in the profile's tag layout (ParamTags), then sends the
// profile's end message, if it has one.
func (c *Client) TerminalParameters(ctx context.Context, r provisioning.AdminRequest) (provisioning.ParamsResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.download("0800", c.cfg.Profile.Codes.Params, r)
	if err != nil {
		return provisioning.ParamsResult{}, err
	}
	resp, err := c.exchange(ctx, "parameters", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.ParamsResult{}, err
	}
	out := provisioning.ParamsResult{RC: Get(resp.m, 39), Demand: resp.demand}
	if out.RC != "00" {
		return out, nil
	}
	if out.Params, err = parseTerminalParams(c.cfg.Profile, GetBytes(resp.m, 62)); err != nil {
		return out, answerErr("parameters", err)
	}
	if code := c.cfg.Profile.Codes.ParamsEnd; code != "" {
		// The end's answer is the host's acknowledgement; the Centerm app
		// ignores its code ("下载结束报文结果，不关心"), and so does the client
		// beyond the log.
		end, err := c.download("0800", code, r)
		if err != nil {
			return provisioning.ParamsResult{}, err
		}
		eresp, err := c.exchange(ctx, "parameters-end", end, macAnswer, c.cfg.Header)
		if err != nil {
			return provisioning.ParamsResult{}, err
		}
		if rc := Get(eresp.m, 39); rc != "00" {
			c.cfg.Log.Warn("parameter download end answered", "rc", rc)
		}
		if eresp.demand != provisioning.DemandNone {
			out.Demand = eresp.demand
		}
	}
	return out, nil
}

// UploadStatus sends the terminal's status (0820, 362): field 62 in the
// profile's status layout (StatusTags), from r.Params.
func (c *Client) UploadStatus(ctx context.Context, r provisioning.StatusUpload) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.download("0820", c.cfg.Profile.Codes.StatusUpload, r.AdminRequest)
	if err != nil {
		return provisioning.Ack{}, err
	}
	f62, err := statusField(c.cfg.Profile, r.Params)
	if err != nil {
		return provisioning.Ack{}, err
	}
	if err := SetBytes(m, 62, f62); err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchange(ctx, "status-upload", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.Ack{}, err
	}
	return c.ack(resp), nil
}

// Settle closes the batch (0500, 201): field 48 the terminal's totals,
// 49 the currency, 63 the operator (LiaoYang_POS PosSettleTran; the
// Centerm app's SETTLEMENT). The answer's field 48 says, per side, whether
// the host's totals agree. Settlement answers carry no field 39 in either
// public app ("结算响应没有bit 39", LiaoYang_POS AfterCommProc; the Centerm
// app's SETTLEMENT unpacks none): an answer without one whose field 48
// parses is taken as accepted, RC "00". An answer with another code comes
// back as that code.
func (c *Client) Settle(ctx context.Context, r provisioning.SettleRequest) (provisioning.SettleResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.admin("0500", c.cfg.Profile.Codes.Settle, r.AdminRequest, true)
	if err != nil {
		return provisioning.SettleResult{}, err
	}
	f48, err := settlementTotals(r.Domestic, r.Foreign)
	if err != nil {
		return provisioning.SettleResult{}, err
	}
	for id, v := range map[int]string{48: f48, 49: c.cfg.Currency, 63: c.cfg.Operator} {
		if err := Set(m, id, v); err != nil {
			return provisioning.SettleResult{}, err
		}
	}
	resp, err := c.exchange(ctx, "settle", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.SettleResult{}, err
	}
	out := provisioning.SettleResult{RC: Get(resp.m, 39), Demand: resp.demand, Time: c.hostTime(resp.m)}
	if out.RC != "" && out.RC != "00" {
		return out, nil
	}
	dom, foreign, err := parseSettlement(Get(resp.m, 48), r.Foreign == provisioning.Totals{})
	if err != nil {
		return out, answerErr("settle", err)
	}
	out.RC, out.DomesticBalanced, out.ForeignBalanced = "00", dom, foreign
	c.cfg.Log.Info("settlement answered", "batch", r.Batch, "domestic_balanced", dom, "foreign_balanced", foreign)
	return out, nil
}

// UploadBatch sends one transaction of an unbalanced batch (0320) with the
// card number the request carries (r.Card): every public batch-upload
// format has it, and without one it refuses with ErrBatchPAN, sending
// nothing.
func (c *Client) UploadBatch(ctx context.Context, r provisioning.BatchUpload) (provisioning.Ack, error) {
	return c.UploadBatchCard(ctx, r, r.Card)
}

// UploadBatchCard sends one transaction of an unbalanced batch (0320, the
// profile's batch-detail code 201) as a field-48 detail: the count (01),
// then the card organisation (00 UnionPay, 01 foreign), the transaction's
// STAN (6), the card number zero-padded to 20 and the amount (12)
// (LiaoYang_POS BatchMagOnLineTrans; the Centerm app's TRANS_CARD_DETAIL).
// A chip sale goes up differently, as its TC in the IC upload format with
// the unbalanced code (205, Codes.ICUploadUnbalanced; see UploadTC), as
// LiaoYang_POS BatchSendICCOnLineTrans and the Centerm app's
// AsyncUploadIcDataTask send it; one whose record has no TC is refused
// (ErrBatchChip).
func (c *Client) UploadBatchCard(ctx context.Context, r provisioning.BatchUpload, card pan.PAN) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if card.IsZero() {
		return provisioning.Ack{}, ErrBatchPAN
	}
	if r.Kind != "sale" && r.Kind != "void" {
		return provisioning.Ack{}, fmt.Errorf("%w: batch upload of kind %q", ErrRequest, r.Kind)
	}
	if r.Kind == "sale" && r.Txn.Entry == provisioning.EntryChip {
		return c.icUpload(ctx, "batch-upload", c.cfg.Profile.Codes.ICUploadUnbalanced, r.AdminRequest, r.Txn, card)
	}
	m, err := c.admin("0320", c.cfg.Profile.Codes.BatchDetail, r.AdminRequest, true)
	if err != nil {
		return provisioning.Ack{}, err
	}
	f48, err := batchDetail(r.Txn, card)
	if err != nil {
		return provisioning.Ack{}, err
	}
	if err := Set(m, 48, f48); err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchange(ctx, "batch-upload", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.Ack{}, err
	}
	return c.ack(resp), nil
}

// EndBatchUpload ends the batch upload (0320): 202 after an unbalanced
// settlement, 207 after a balanced one (the profile's codes), field 48 the
// number of transactions that went up, four digits (LiaoYang_POS
// PosBatchUp; the Centerm app's SETTLEMENT_DONE). Both public apps send it
// after a balanced settlement too.
func (c *Client) EndBatchUpload(ctx context.Context, r provisioning.BatchEnd) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	code := c.cfg.Profile.Codes.BatchEndUnbalanced
	if r.Balanced {
		code = c.cfg.Profile.Codes.BatchEndBalanced
	}
	if r.Count < 0 || r.Count > 9999 {
		return provisioning.Ack{}, &FieldError{Op: "pack", Field: 48}
	}
	m, err := c.admin("0320", code, r.AdminRequest, true)
	if err != nil {
		return provisioning.Ack{}, err
	}
	if err := Set(m, 48, fmt.Sprintf("%04d", r.Count)); err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchange(ctx, "batch-end", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.Ack{}, err
	}
	return c.ack(resp), nil
}

// simple sends a download-class message that carries nothing but the
// terminal and field 60 (the end messages) and returns its code.
func (c *Client) simple(ctx context.Context, op, mti, code string, r provisioning.AdminRequest) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.download(mti, code, r)
	if err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchange(ctx, op, m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.Ack{}, err
	}
	return c.ack(resp), nil
}

// UploadTC sends a chip sale's TC before settlement (0320, the profile's
// IC upload code, 203): see icUpload for the fields. A record without a TC
// is refused with ErrBatchChip, and one without the card number with
// ErrBatchPAN, nothing sent.
func (c *Client) UploadTC(ctx context.Context, r provisioning.TCUpload) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Card.IsZero() {
		return provisioning.Ack{}, ErrBatchPAN
	}
	return c.icUpload(ctx, "tc-upload", c.cfg.Profile.Codes.ICUpload, r.AdminRequest, r.Txn, r.Card)
}

// icMatch are the request fields the answer to a chip notice must echo:
// not the amount (exchangeMatch).
var icMatch = []int{3, 11, 41, 42}

// icUpload sends one chip sale in the IC upload format (0320) with code:
// 2 the card number, 4 the amount, 11 the sale's own STAN, 22 its entry
// mode, 23 the PAN sequence number, 41, 42, 55 the TC set (Txn.IC.TC, the
// second GENERATE AC's objects), 60 (00, the batch, code, 60.4 5, 60.5 0)
// and 62 "61" + the card organisation (00 UnionPay, 01 other) + "00" + the
// amount (12) + the currency. That is what both public apps send:
// LiaoYang_POS Src/tranproc.c BatchSendICCOnLineTrans (after
// SetCommReqField, whose STAN is the logged sale's) and the Centerm app's
// TRANS_IC_DETAIL (union_pay.xml: 2 4 11 22 23 41 42 55 60 62;
// AsyncUploadIcDataTask.initData, 62 "用法六"). Neither MACs it
// (LiaoYang_POS HaveMacData lists no ICC_BATCHUP; TRANS_IC_DETAIL packs no
// field 64), so an answer's MAC is checked where one comes (macAnswer).
// The host matches the sale by terminal, batch and STAN, and its 9F36 to
// the ARQC's.
func (c *Client) icUpload(ctx context.Context, op, code string, r provisioning.AdminRequest, t provisioning.TxnRecord, card pan.PAN) (provisioning.Ack, error) {
	if t.IC == nil || t.IC.TC == "" {
		return provisioning.Ack{}, ErrBatchChip
	}
	tc, err := hex.DecodeString(t.IC.TC)
	if err != nil || len(tc) == 0 {
		return provisioning.Ack{}, &FieldError{Op: "pack", Field: 55}
	}
	if t.Amount <= 0 || t.Amount > 999999999999 {
		return provisioning.Ack{}, &FieldError{Op: "pack", Field: 4}
	}
	if t.Entry != provisioning.EntryChip && t.Entry != provisioning.EntryContactless {
		return provisioning.Ack{}, fmt.Errorf("%w: IC upload of a %q read", ErrRequest, t.Entry)
	}
	em, _ := entryModeOf(t.Entry, true)
	// The sale's STAN, not the request's: the message is the sale's record.
	m, err := c.admin("0320", code, provisioning.AdminRequest{Terminal: r.Terminal, STAN: t.STAN, Batch: r.Batch}, true)
	if err != nil {
		return provisioning.Ack{}, err
	}
	amount := fmt.Sprintf("%012d", t.Amount)
	org := "01"
	if card.HasPrefix("62") {
		org = "00"
	}
	f60, _ := ParseField60(Get(m, 60))
	f60.Reader, f60.Fallback = em.reader, em.fallback
	fields := map[int]string{2: card.Reveal(), 4: amount, 22: em.field22(t.PIN), 60: f60.String()}
	if t.IC.CSN != "" {
		fields[23] = panSeq(t.IC.CSN)
	}
	for id, v := range fields {
		if err := Set(m, id, v); err != nil {
			return provisioning.Ack{}, err
		}
	}
	if err := SetBytes(m, 55, tc); err != nil {
		return provisioning.Ack{}, err
	}
	if err := SetBytes(m, 62, []byte("61"+org+"00"+amount+c.cfg.Currency)); err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchangeMatch(ctx, op, m, macAnswer, c.cfg.Header, icMatch)
	if err != nil {
		return provisioning.Ack{}, err
	}
	return c.ack(resp), nil
}

// scriptTags are the objects of a script-result notice's field 55, in the
// order both public apps send them (LiaoYang_POS Src/emvtranproc.c
// stScriptResultTagList; the Centerm app's TradingPresent.saveScriptInfo,
// "9F33 95 9F37 9F1E 9F10 9F26 9F36 82 DF31 9F1A 9A").
var scriptTags = []string{"9F33", "95", "9F37", "9F1E", "9F10", "9F26", "9F36", "82", "DF31", "9F1A", "9A"}

// NotifyScripts tells the issuer how its scripts ran on the card (0620, the
// profile's script-result code, 951): 2 the card number (when given), 3,
// 4, 11 the request's STAN, 22, 23, 25, 37 and 38 of the sale, 41, 42, 49,
// 55 (scriptTags: DF31 from Txn.IC.Scripts, the others from the TC set,
// else the record), 60 (00, the batch, 951, the sale's 60.4 and 60.5), 61
// the sale's batch, STAN and date (MMDD, host time) and 64, the message
// MACed: the fields of LiaoYang_POS SendScriptResult and of the Centerm
// app's UPLOAD_SCRIPT_RESULT (union_pay.xml). Both also send field 32, the
// acquirer's code from the sale's answer, which the record does not keep:
// it is left out. A record without script results is refused, nothing
// sent.
func (c *Client) NotifyScripts(ctx context.Context, r provisioning.ScriptNotice) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := r.Txn
	if t.IC == nil || t.IC.Scripts == "" {
		return provisioning.Ack{}, fmt.Errorf("%w: a script notice without script results", ErrRequest)
	}
	if t.Entry != provisioning.EntryChip {
		return provisioning.Ack{}, fmt.Errorf("%w: script notice of a %q read", ErrRequest, t.Entry)
	}
	f55, err := scriptField(t.IC)
	if err != nil {
		return provisioning.Ack{}, err
	}
	if !isDigits(t.Batch, 6) || t.STAN < 1 || t.STAN > 999999 {
		return provisioning.Ack{}, &FieldError{Op: "pack", Field: 61}
	}
	m, err := c.financial("0620", "000000", r.Terminal, r.STAN, t.Amount)
	if err != nil {
		return provisioning.Ack{}, err
	}
	if !r.Card.IsZero() {
		if err := Set(m, 2, r.Card.Reveal()); err != nil {
			return provisioning.Ack{}, err
		}
	}
	em, _ := entryModeOf(provisioning.EntryChip, true)
	if err := Set(m, 22, em.field22(t.PIN)); err != nil {
		return provisioning.Ack{}, err
	}
	if t.IC.CSN != "" {
		if err := Set(m, 23, panSeq(t.IC.CSN)); err != nil {
			return provisioning.Ack{}, err
		}
	}
	if err := Set(m, 25, "00"); err != nil {
		return provisioning.Ack{}, err
	}
	if t.RRN != "" {
		if err := Set(m, 37, t.RRN); err != nil {
			return provisioning.Ack{}, err
		}
	}
	if t.AuthCode != "" {
		if err := Set(m, 38, t.AuthCode); err != nil {
			return provisioning.Ack{}, err
		}
	}
	if err := SetBytes(m, 55, f55); err != nil {
		return provisioning.Ack{}, err
	}
	batch := r.Batch
	if batch == "" {
		batch = c.batch
	}
	if err := c.setTail(m, r.Terminal, "00", batch, em); err != nil {
		return provisioning.Ack{}, err
	}
	f60, _ := ParseField60(Get(m, 60))
	f60.Code = c.cfg.Profile.Codes.ScriptResult
	if err := Set(m, 60, f60.String()); err != nil {
		return provisioning.Ack{}, err
	}
	f61 := t.Batch + fmt.Sprintf("%06d", t.STAN)
	if !t.Time.IsZero() {
		f61 += t.Time.In(c.cfg.HostLocation).Format("0102")
	}
	if err := Set(m, 61, f61); err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchangeMatch(ctx, "script-notice", m, macFull, c.cfg.Header, icMatch)
	if err != nil {
		return provisioning.Ack{}, err
	}
	return c.ack(resp), nil
}

// scriptField is field 55 of a script-result notice: the scriptTags the
// TC set has, the record's own values (TVR, UN, cryptogram, ATC, AIP) for
// those it lacks, and DF31. The ATC and DF31 are required: without them
// the issuer cannot tie the results to its scripts.
func scriptField(ic *provisioning.ICData) ([]byte, error) {
	bad := &FieldError{Op: "pack", Field: 55}
	have := map[string][]byte{}
	if ic.TC != "" {
		b, err := hex.DecodeString(ic.TC)
		if err != nil {
			return nil, bad
		}
		objs, err := decodeTLVField(b, 55)
		if err != nil {
			return nil, bad
		}
		for _, o := range objs {
			// The first of a tag counts, as a kernel reads its data.
			if _, dup := have[o.Tag]; !dup && o.Value != nil {
				have[o.Tag] = o.Value
			}
		}
	}
	cryptogram := ic.Cryptogram
	if cryptogram == "" {
		cryptogram = ic.ARQC
	}
	for tag, v := range map[string]string{"95": ic.TVR, "9F37": ic.UN, "9F26": cryptogram, "9F36": ic.ATC, "82": ic.AIP} {
		if _, ok := have[tag]; ok || v == "" {
			continue
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			return nil, bad
		}
		have[tag] = b
	}
	results, err := scriptResults(ic.Scripts)
	if err != nil {
		return nil, bad
	}
	have["DF31"] = results
	if len(have["9F36"]) != 2 {
		return nil, bad
	}
	var out []bertlv.TLV
	for _, tag := range scriptTags {
		if v, ok := have[tag]; ok {
			out = append(out, bertlv.NewTag(tag, v))
		}
	}
	b, err := bertlv.Encode(out)
	if err != nil {
		return nil, bad
	}
	return b, nil
}

// scriptResults is the value of DF31 from ICData.Scripts: the results
// themselves (5 bytes each: the result nibble and the script's sequence,
// then its 4-byte identifier, EMV Book 4 A5) or the whole DF31 object.
// A result's first nibble is 0, 1 or 2, so a value never starts DF.
func scriptResults(h string) ([]byte, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, err
	}
	if len(b) >= 2 && b[0] == 0xDF && b[1] == 0x31 {
		objs, err := decodeTLVField(b, 55)
		if err != nil || len(objs) != 1 {
			return nil, ErrMalformed
		}
		b = objs[0].Value
	}
	if len(b) == 0 || len(b)%5 != 0 {
		return nil, ErrMalformed
	}
	return b, nil
}
