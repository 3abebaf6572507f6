package ticket

// Codes of the ways a ticket is refused. They are stable: monitoring and the
// installer's screen show them, and support scripts key on them.
const (
	CodeMalformed     = "E_TICKET_MALFORMED"      // not a v1 ticket (JSON, fields)
	CodeUnsigned      = "E_TICKET_UNSIGNED"       // no signature
	CodeBadSignature  = "E_TICKET_BAD_SIGNATURE"  // not signed by the configured key, or altered
	CodeExpired       = "E_TICKET_EXPIRED"        // expires_at has passed
	CodeNotYetValid   = "E_TICKET_NOT_YET_VALID"  // issued_at is in the future
	CodeOtherTerminal = "E_TICKET_OTHER_TERMINAL" // signed for another TID
	CodeReplayed      = "E_TICKET_REPLAYED"       // not newer than the last accepted
)

// Error is a refused ticket. Message says which rule and which field, never a
// field's value: tickets carry a merchant's name and account hash.
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
	ErrMalformed     = &Error{Code: CodeMalformed}
	ErrUnsigned      = &Error{Code: CodeUnsigned}
	ErrBadSignature  = &Error{Code: CodeBadSignature}
	ErrExpired       = &Error{Code: CodeExpired}
	ErrNotYetValid   = &Error{Code: CodeNotYetValid}
	ErrOtherTerminal = &Error{Code: CodeOtherTerminal}
	ErrReplayed      = &Error{Code: CodeReplayed}
)
