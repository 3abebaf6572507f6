// Package testca holds the simulators' TEST-ONLY certification authority
// keys under UnionPay's RID (see README.md in this directory for how openssl
// made them). The public halves (capk.yaml) are what hostsim serves in the IC
// public key download when no other keys are named; the private halves are
// there for a virtual card that signs its issuer certificate. The package is
// embedded so that every simulator and test finds them without a path; only
// agent/sim imports it, and the firmware build links nothing of agent/sim.
package testca

import "embed"

// CAPKYAML is capk.yaml: RID, index, expiry, hash and key algorithm,
// exponent, modulus and DF03 checksum of each key, in hex.
//
//go:embed capk.yaml
var CAPKYAML []byte

// Keys holds capk.yaml and the private halves, A000000333-IDX.TEST-ONLY.key.pem.
//
//go:embed capk.yaml *.pem
var Keys embed.FS
