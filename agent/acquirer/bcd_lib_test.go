package acquirer

import "github.com/moov-io/iso8583/encoding"

type encodingPair = encoding.Encoder

var (
	moovBCD  encodingPair = encoding.BCD
	moovLBCD encodingPair = encoding.LBCD
)
