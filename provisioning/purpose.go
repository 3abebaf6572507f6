package provisioning

// Why the flow asks a CardSource for a card. The flow passes one of these as
// ReadCard's purpose: sources show it to the installer, and a chip source
// picks the transaction the card signs for by it (the test sale's amount,
// or a zero-amount inquiry).
const (
	PurposeBind     = "bind settlement card"
	PurposeTestSale = "test sale"
	PurposeVoid     = "void test sale"
)
