// Package drivers is the home of posagent's device drivers, one sub-package per
// concept with a backend per sub-package, as periph.io lays out gpio and its
// hosts: cardreader (PC/SC through ebfe/scard), serialport, magstripe and
// printer (ESC/POS over tarm/serial), keypad (GPIO matrix through periph.io).
//
// Only drivers import those libraries; the install flow sees the small
// interfaces of package provisioning, and the walking skeleton runs on the
// simulated devices of agent/sim until each driver lands (issues 3, 4 and 7).
package drivers
