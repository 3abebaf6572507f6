// Package drivers is the home of posagent's device drivers, one sub-package per
// concept with a backend per sub-package, as periph.io lays out gpio and its
// hosts: cardreader (PC/SC through ebfe/scard), serialport, magstripe and
// printer (ESC/POS over tarm/serial), keypad (GPIO matrix through periph.io).
//
// Only drivers import those libraries; the install flow sees the small
// interfaces of package provisioning, which the agent adapts the drivers to
// (agent/card, agent/receipt, agent/installer/ui).
//
// A driver knows its device, not what the terminal does with it: nothing
// under drivers/ imports agent/, provisioning/ or cmd/, the self-masking card
// number of provisioning/pan excepted. The printer prints pages of styled
// lines; agent/receipt lays the sales slip out as such a page and adapts the
// driver to the flow's provisioning.Printer. deps_test.go checks the rule.
package drivers
