package ticket

// Codes of the ways a ticket is refused. They are stable: monitoring and the
// installer's screen show them, and support scripts key on them.
const (
	CodeTooLarge      = "E_TICKET_TOO_LARGE"      // over MaxSize bytes, refused before parsing
	CodeMalformed     = "E_TICKET_MALFORMED"      // not a strict v2 ticket (JSON, keys, fields)
	CodeUnsigned      = "E_TICKET_UNSIGNED"       // no signature
	CodeUnknownKey    = "E_TICKET_UNKNOWN_KEY"    // kid names no configured key
	CodeKeyRevoked    = "E_TICKET_KEY_REVOKED"    // kid names a revoked key
	CodeBadSignature  = "E_TICKET_BAD_SIGNATURE"  // does not verify with the key its kid names, or altered
	CodeOtherTerminal = "E_TICKET_OTHER_TERMINAL" // signed for another TID
	CodeExpired       = "E_TICKET_EXPIRED"        // expires_at has passed (clock or floor)
	CodeNotYetValid   = "E_TICKET_NOT_YET_VALID"  // issued_at is in the future
	CodeAmount        = "E_TICKET_AMOUNT"         // test_amount above the configured cap
	CodeSuperseded    = "E_TICKET_SUPERSEDED"     // not newer than the last accepted one
	CodeReplayed      = "E_TICKET_REPLAYED"       // newer, but reuses the last accepted one's nonce
)

// Error is a refused ticket. Message says which rule and which field, never a
// field's value: tickets carry a merchant's name and account check value.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return "ticket: " + e.Code + ": " + e.Message }

// Is matches on the code, so errors.Is(err, ticket.ErrExpired) works for any
// expired ticket whatever the message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is, one per code.
var (
	ErrTooLarge      = &Error{Code: CodeTooLarge}
	ErrMalformed     = &Error{Code: CodeMalformed}
	ErrUnsigned      = &Error{Code: CodeUnsigned}
	ErrUnknownKey    = &Error{Code: CodeUnknownKey}
	ErrKeyRevoked    = &Error{Code: CodeKeyRevoked}
	ErrBadSignature  = &Error{Code: CodeBadSignature}
	ErrOtherTerminal = &Error{Code: CodeOtherTerminal}
	ErrExpired       = &Error{Code: CodeExpired}
	ErrNotYetValid   = &Error{Code: CodeNotYetValid}
	ErrAmount        = &Error{Code: CodeAmount}
	ErrSuperseded    = &Error{Code: CodeSuperseded}
	ErrReplayed      = &Error{Code: CodeReplayed}
)
