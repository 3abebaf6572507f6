// Package perfbench is the firmware bench (`make bench`): it measures the
// issue-8 targets on the real device stack (pcscd with a virtual chip card,
// a pty printer, the acquirer simulator, mosquitto) and prints one table:
// armv7 binary size, idle resident memory, start → MQTT online, the agent's
// CPU time against the simulated device I/O of a whole install, and the
// allocations of the Go benchmarks. Timing targets live here and nowhere
// else: the ordinary tests never time anything.
package perfbench
