package provisioning

import (
	"errors"
	"fmt"
	"strings"
)

// Text is one sentence in both of the terminal's languages. Screens show the
// Chinese first, as the terminal's own titles do.
type Text struct{ ZH, EN string }

// String is the Chinese then the English sentence, on one line.
func (t Text) String() string {
	switch {
	case t.ZH == "":
		return t.EN
	case t.EN == "":
		return t.ZH
	}
	return t.ZH + " " + t.EN
}

// format fills both sentences from args; an arg that is a Text gives each
// language its own part.
func (t Text) format(args ...any) Text {
	if len(args) == 0 {
		return t
	}
	zh, en := make([]any, len(args)), make([]any, len(args))
	for i, a := range args {
		if x, ok := a.(Text); ok {
			zh[i], en[i] = x.ZH, x.EN
		} else {
			zh[i], en[i] = a, a
		}
	}
	return Text{ZH: fmt.Sprintf(t.ZH, zh...), EN: fmt.Sprintf(t.EN, en...)}
}

// Explanation is what the installer is told about a failure code: what
// happened, and what to do about it.
type Explanation struct {
	Message Text // what happened; may hold fmt verbs the failure fills in
	Action  Text // what to do next
}

// Actions that recur.
var (
	actionRetry     = Text{"重试", "Retry"}
	actionNetwork   = Text{"检查网络后重试", "Check network, retry"}
	actionAcquirer  = Text{"联系收单行", "Call the acquirer"}
	actionSupport   = Text{"联系技术支持", "Call support"}
	actionReinsert  = Text{"重新插卡", "Reinsert the card"}
	actionParams    = Text{"重新下载参数", "Load the parameters again"}
	actionOtherCard = Text{"请用登记的结算卡", "Use the registered card"}
)

// explanations is every failure code the flow and its sources report, in
// one place: the installer's screen and central's report both read it, so
// a code cannot say one thing on the terminal and another at central. Codes
// are stable (monitoring branches on them); never change what one means.
var explanations = map[string]Explanation{
	// Devices and the terminal itself.
	"E_SELFTEST": {Text{"%s自检失败", "The %s failed its self test"}, Text{"检查设备和打印纸后重试", "Check the devices and the paper, then retry"}},
	// E_CLOCK is no longer raised (the flow's clock is floored and set from
	// the host, clock.go); kept so that reports that carry it still read.
	"E_CLOCK":             {Text{"终端时钟未设置", "The terminal's clock is not set"}, Text{"设置时钟后重试", "Set the clock, then retry"}},
	"E_STORAGE":           {Text{"无法保存安装进度", "The install's progress could not be saved"}, Text{"检查存储后重试", "Check the storage, then retry"}},
	"E_STATE":             {Text{"安装记录不完整（%s）", "The install record is incomplete (%s)"}, actionSupport},
	"E_INTERNAL":          {Text{"内部错误", "Internal error"}, actionSupport},
	"E_TOO_MANY_ATTEMPTS": {Text{"%s步骤已开始%d次仍未完成", "Step %s started %d times without finishing"}, actionSupport},
	"E_STEP":              {Text{"%s步骤未完成", "Step %s did not finish"}, actionRetry},

	// Host link and parameters.
	"E_NETWORK":              {Text{"无法连接收单主机", "The acquirer host cannot be reached"}, actionNetwork},
	"E_PARAMETERS":           {Text{"商户参数不可用", "The merchant parameters are unavailable"}, actionAcquirer},
	"E_PARAMETERS_DATA":      {Text{"商户参数中结算卡类型无效", "The merchant parameters name no valid card type"}, actionAcquirer},
	"E_TEST_AMOUNT":          {Text{"中心要求的测试金额%s超过上限%s", "The test sale amount asked, %s, is over the limit of %s"}, Text{"请中心重发票据", "Have central send a new ticket"}},
	"E_AMOUNT_NOT_CONFIRMED": {Text{"测试金额%s未确认", "The test sale amount %s was not confirmed"}, Text{"确认金额或请中心重发票据", "Confirm it, or have central send a new ticket"}},
	"E_MID_MISMATCH":         {Text{"商户参数的商户号%s与终端的%s不符", "The merchant parameters are for MID %s, the terminal has %s"}, Text{"核对商户号", "Check the MID"}},
	"E_SIGNON":               {Text{"签到无应答", "Sign-on got no answer"}, actionNetwork},
	"E_SIGNON_DECLINED":      {Text{"主机拒绝签到，应答码%s", "The host refused sign-on, response code %s"}, actionAcquirer},
	"E_KEY_CHECK":            {Text{"工作密钥校验值不符", "The working keys' check values do not match"}, actionAcquirer},
	"E_NO_TMK":               {Text{"终端无主密钥", "The terminal holds no master key"}, Text{"注入或下载主密钥后重试", "Inject or download the TMK, then retry"}},
	"E_TMK_DOWNLOAD":         {Text{"%s无应答", "The %s got no answer"}, actionNetwork},
	"E_TMK_DECLINED":         {Text{"主机拒绝%s，应答码%s", "The host refused the %s, response code %s"}, actionAcquirer},
	"E_TMK_CHECK":            {Text{"下载的主密钥校验值不符，未启用", "The downloaded TMK does not match its check value; it was not activated"}, Text{"重试；仍失败请联系收单行", "Retry; if it persists call the acquirer"}},
	"E_NO_TDK":               {Text{"签到应答缺少磁道密钥", "The sign-on answer brought no track key"}, Text{"重试；仍失败请联系收单行", "Retry; if it persists call the acquirer"}},

	// The acquirer's procedure: downloads, status upload, settlement, sign-off.
	"E_ADMIN_HOST":     {Text{"%s无应答", "The %s got no answer"}, actionNetwork},
	"E_ADMIN_DECLINED": {Text{"主机拒绝%s，应答码%s", "The host refused the %s, response code %s"}, actionAcquirer},
	"E_ADMIN_MAC":      {Text{"%s应答MAC校验失败，将重新签到", "The %s answer failed its MAC check; the terminal will sign on again"}, actionRetry},
	"E_DOWNLOAD_DATA":  {Text{"%s数据无效", "The %s sent data the terminal cannot use"}, Text{"重试；仍失败请联系收单行", "Retry; if it persists call the acquirer"}},
	"E_BATCH_REOPENED": {Text{"签到应答仍为已结算批次%s，将重新签到", "The sign-on answer names the settled batch %s; the terminal signs on again"}, actionRetry},
	"E_BATCH_UPLOAD":   {Text{"%s无法发出，交易记录缺少卡号或芯片交易的TC", "The %s cannot go; the record lacks the card number or a chip sale's TC"}, actionSupport},
	"E_CAPK_CHECKSUM":  {Text{"IC卡公钥%s校验值不符", "The IC public key %s fails its checksum"}, Text{"重试；仍失败请联系收单行", "Retry; if it persists call the acquirer"}},
	"E_DOWNLOAD_STORE": {Text{"无法保存下载的IC卡参数", "The downloaded IC keys and parameters could not be stored"}, Text{"检查存储后重试", "Check the storage, then retry"}},
	"E_NO_CAPK":        {Text{"请先下载CAPK参数：IC卡公钥或IC卡参数未下载，不能做芯片交易", "The IC public keys or IC parameters are not loaded, so no chip transaction runs; download them first"}, Text{"重试以重新下载", "Retry to download them again"}},

	// Cards.
	"E_CARD_READ": {Text{"无法读卡", "The card could not be read"}, actionReinsert},
	// The card's side of an online transaction: the host approved, the
	// card did not finish with a TC; the sale is reversed (reason 06).
	"E_CARD_DECLINED":         {Text{"主机已批准，卡片拒绝%s，将冲正", "The card declined the %s the host approved; it will be reversed"}, Text{"重试；仍失败请换卡或联系发卡行", "Retry; if it persists use another card or call the issuer"}},
	"E_CARD_USE_CONTACT":      {Text{"请插卡或刷卡：金额达到非接交易限额，或卡片要求接触式交易", "Insert or swipe the card. The amount reaches the contactless limit, or the card asks for contact"}, Text{"插卡或刷卡后重试", "Insert or swipe the card, then retry"}},
	"E_CARD_DECLINED_OFFLINE": {Text{"卡片脱机拒绝交易，未发送主机", "The card declined the sale offline; nothing went to the host"}, Text{"换卡重试或联系发卡行", "Retry with another card or call the issuer"}},
	"E_CARD_REMOVED":          {Text{"%s完成前卡片被拔出，将冲正", "The card was removed before the %s finished; it will be reversed"}, Text{"交易完成前请勿拔卡，重试", "Leave the card in until the end, then retry"}},
	"E_CARD_COMPLETION":       {Text{"卡片未能完成%s，将冲正", "The card could not finish the %s; it will be reversed"}, actionReinsert},
	"E_PIN_CANCELLED":         {Text{"密码输入已取消", "PIN entry was cancelled"}, Text{"重试并输入密码", "Retry and enter the PIN"}},
	"E_NOT_CONFIRMED":         {Text{"结算卡未确认", "The settlement card was not confirmed"}, Text{"重试并确认卡片", "Retry and confirm the card"}},
	"E_WRONG_CARD":            {Text{"请插入测试交易的卡%s", "Insert the card of the test sale, %s"}, Text{"插入测试交易的卡", "Insert the test sale's card"}},
	"E_ACCOUNT_CHECK":         {Text{"终端密钥不可用，无法核对结算账户", "Without the terminal's keys the settlement account cannot be checked"}, actionSupport},
	"E_SEAL":                  {Text{"无法为冲正记录加密卡号", "The card number could not be sealed for the reversal record"}, actionSupport},

	// Transactions.
	"E_DECLINED":       {Text{"%s被拒绝，应答码%s", "The %s was declined, response code %s"}, actionAcquirer},
	"E_HOST":           {Text{"%s无应答，将冲正", "The %s got no answer; it will be reversed"}, actionNetwork},
	"E_MAC":            {Text{"%s应答MAC校验失败，将冲正", "The %s answer failed its MAC check; it will be reversed"}, actionAcquirer},
	"E_REVERSAL":       {Text{"%s（流水号%06d）冲正未完成（第%d次，共%d次），将再次发送", "The reversal of the %s, STAN %06d, did not complete (try %d of %d); it will be sent again"}, actionNetwork},
	"E_REVERSAL_LIMIT": {Text{"%s（流水号%06d 批次%s %s %s）冲正%d次未成功", "The reversal of the %s, STAN %06d batch %s %s %s, failed %d times"}, Text{"请收单行人工撤销后主管清除", "Have the acquirer cancel it by hand, then a supervisor clears it"}},
	"E_VOID_UNMATCHED": {Text{"主机无法匹配撤销（应答码%s），将冲正测试交易（流水号%06d）后重做", "The host cannot match the void (response code %s); the test sale, STAN %06d, will be reversed and done again"}, actionRetry},
	"E_HOST_ANSWER":    {Text{"%s应答无法确认，将冲正", "The %s answer settles nothing; it will be reversed"}, actionNetwork},
	"E_IDENTITY_CHANGED": {Text{"安装进行中：商户号%s 终端号%s，现为%s %s", "The install runs as MID %s TID %s, now %s %s"},
		Text{"恢复原号码，或主管清除以重置安装", "Restore the numbers, or a supervisor clears to reset the install"}},
	"E_PRINTER": {Text{"签购单未打印", "The sales slip did not print"}, Text{"检查打印纸和机盖后重试", "Check the paper and the cover, then retry"}},

	"E_PAPER_END":         {Text{"打印机缺纸", "The printer is out of paper"}, Text{"装纸后重试", "Load paper, retry"}},
	"E_COVER_OPEN":        {Text{"打印机盖未关", "The printer cover is open"}, Text{"关好机盖后重试", "Close the cover, then retry"}},
	"E_PRINTER_OFFLINE":   {Text{"打印机离线", "The printer is offline"}, Text{"检查打印机后重试", "Check the printer, then retry"}},
	"E_PRINTER_FAULT":     {Text{"打印机故障", "The printer reports a fault"}, Text{"重启打印机后重试", "Switch the printer off and on, then retry"}},
	"E_PRINTER_NO_ANSWER": {Text{"打印机无响应", "The printer does not answer"}, Text{"检查打印机电源和连线", "Check the printer's power and cable"}},

	// Binding rejections (binding.go): their messages are the Rejection's.
	RejectBadLuhn:        {Action: actionReinsert},
	RejectNotUnionPay:    {Action: Text{"请用银联结算卡", "Use the UnionPay settlement card"}},
	RejectCardType:       {Action: Text{"卡类型不符，换卡", "Wrong card type, swap card"}},
	RejectExpired:        {Action: Text{"卡已过期，换卡", "Card expired, swap card"}},
	RejectNameMismatch:   {Action: Text{"请用法人本人卡", "Use the legal person's card"}},
	RejectOtherAccount:   {Action: actionOtherCard},
	RejectUnreadable:     {Action: actionReinsert},
	RejectMerchantRecord: {Action: actionParams},
}

// operatorCodes are the failures a retry cannot help: only an operator (a
// supervisor at the keypad, or central's signed command), after the acquirer
// settled the matter, clears them.
var operatorCodes = map[string]bool{"E_REVERSAL_LIMIT": true, "E_IDENTITY_CHANGED": true}

// OperatorOnly says whether code is a failure only an operator clears.
func OperatorOnly(code string) bool { return operatorCodes[code] }

// Explain returns what the installer is told about code.
func Explain(code string) (Explanation, bool) {
	e, ok := explanations[code]
	return e, ok
}

// Codes lists every code Explain knows, for tests and documentation.
func Codes() []string {
	out := make([]string, 0, len(explanations))
	for c := range explanations {
		out = append(out, c)
	}
	return out
}

// StepError is a step failure with a stable code for monitoring. What the
// installer reads comes from the code's Explanation, filled with Args; Err is
// the technical cause, for the log and central's report, never for the
// screen. Neither carries a card number beyond the masked form.
type StepError struct {
	Code string
	Args []any // fill the Explanation's message
	Err  error // cause; may be nil
}

// Message is the installer's sentence for the failure.
func (e *StepError) Message() Text {
	x, ok := explanations[e.Code]
	if !ok {
		x = explanations["E_INTERNAL"]
	}
	return x.Message.format(e.Args...)
}

func (e *StepError) Error() string {
	s := e.Code + ": " + e.Message().EN
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// CodedError is a device's or source's error that names the failure code
// the installer is shown for it (a printer's "paper end", say).
type CodedError interface {
	error
	FailureCode() string
}

// codeOf is the code a coded cause names when the catalogue knows it, else
// def.
func codeOf(err error, def string) string {
	var ce CodedError
	if errors.As(err, &ce) {
		if _, ok := explanations[ce.FailureCode()]; ok {
			return ce.FailureCode()
		}
	}
	return def
}

func stepErr(code string, cause error, args ...any) error {
	return &StepError{Code: code, Args: args, Err: cause}
}

// promptError is a failure of the screen or keypad while a step waited for
// the installer. It is not the step's failure (the step can run again once
// the keypad is back), so Run returns it instead of recording one.
type promptError struct{ err error }

func (e *promptError) Error() string { return "provisioning: installer prompt: " + e.err.Error() }
func (e *promptError) Unwrap() error { return e.err }

// FailureFor turns a step's error into what is persisted, shown and reported:
// the code, the installer's sentence and action, and the cause.
func FailureFor(step Step, err error) *Failure {
	fl := &Failure{Step: step, Actions: []string{"retry", "abort"}}
	defer func() {
		if operatorCodes[fl.Code] {
			fl.Actions = []string{"clear", "abort"}
		}
	}()
	var rej *Rejection
	var se *StepError
	switch {
	case errors.As(err, &rej):
		fl.Code, fl.Message = rej.Code, rej.Message
	case errors.As(err, &se):
		fl.Code, fl.Message = se.Code, se.Message().String()
		if se.Err != nil {
			fl.Cause = se.Err.Error()
		}
	default:
		// An error no step named: the step is named instead, the cause kept
		// for the log and central, and the installer told only that.
		fl.Code = "E_" + strings.ToUpper(strings.ReplaceAll(string(step), "-", "_"))
		fl.Message = explanations["E_STEP"].Message.format(string(step)).String()
		fl.Cause = err.Error()
	}
	x, ok := explanations[fl.Code]
	if !ok {
		x = explanations["E_STEP"]
	}
	fl.Action = x.Action.String()
	return fl
}
