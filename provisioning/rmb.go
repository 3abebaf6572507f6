package provisioning

import "strconv"

// FormatRMB is an amount in fen as a slip and the installer's screens show it:
// "RMB 12.50". A negative amount (a refund shown as such) keeps its sign,
// "RMB -0.01". It is the one place amounts become text, so the slip, the
// screens and the failure messages never disagree about a sum.
func FormatRMB(fen int64) string {
	sign := ""
	// Work in uint64 so that the most negative int64 has a magnitude too.
	u := uint64(fen)
	if fen < 0 {
		sign = "-"
		u = -u
	}
	frac := u % 100
	return "RMB " + sign + strconv.FormatUint(u/100, 10) + "." +
		string(rune('0'+frac/10)) + string(rune('0'+frac%10))
}
