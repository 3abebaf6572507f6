package provisioning

import (
	"fmt"
	"testing"
)

func TestFormatRMB(t *testing.T) {
	for _, tc := range []struct {
		fen  int64
		want string
	}{
		{0, "RMB 0.00"},
		{1, "RMB 0.01"},
		{10, "RMB 0.10"},
		{99, "RMB 0.99"},
		{100, "RMB 1.00"},
		{1250, "RMB 12.50"},
		{100000000, "RMB 1000000.00"},
		{-1, "RMB -0.01"},
		{-1250, "RMB -12.50"},
		{-9223372036854775808, "RMB -92233720368547758.08"},
	} {
		if got := FormatRMB(tc.fen); got != tc.want {
			t.Errorf("FormatRMB(%d) = %q, want %q", tc.fen, got, tc.want)
		}
	}
}

func ExampleFormatRMB() {
	fmt.Println(FormatRMB(1))
	fmt.Println(FormatRMB(1250))
	// Output:
	// RMB 0.01
	// RMB 12.50
}
