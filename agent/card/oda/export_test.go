package oda

// The checks after the RSA operation, for the fuzz target that feeds them
// recovered blocks directly: through a real key, random input almost never
// gets past the header, and these parsers would go unexercised.
var (
	IssuerKeyFromRecovered = issuerKey
	ICCKeyFromRecovered    = iccKey
	DACFromRecovered       = sdaDAC
	DynamicFromRecovered   = dynamicData
)
