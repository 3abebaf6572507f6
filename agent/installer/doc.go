// Package installer is the installer's menu at the terminal: the state machine
// that turns key presses into "enter install mode", "enter or confirm MID and
// TID", "run (or resume) the install", "retry, skip with a reason, or abort a
// failed step", shown on a small rows × cols text display with Chinese text.
//
// It sits between the keypad and screen (agent/installer/ui's Keypad and Display) and
// the install flow, which it runs through a callback (Installer.Run), so the
// composition root plugs provisioning.Flow in and this package never builds
// devices. The flow's own prompts reach the screen through the installer's
// Prompter, which adds what the flow does not know about: the idle timeout,
// CANCEL on every prompt, the skip choice and the bank on the card screen.
//
// Time comes from a Clock. VirtualClock moves only when told (a key script's
// "wait 30s", or a test), so the idle timeout and the lock-out are tested, and
// demonstrated, without sleeping.
//
// Secrets: the installer password is configured as a salted PBKDF2 hash
// (HashPassword), compared in constant time, shown as one '*' per digit and
// never logged. Wrong tries and the lock-out are persisted through a Store, so
// power-cycling the terminal does not buy more tries. Cards appear masked
// only: the flow hands over masked PANs and this package never sees more.
//
// Installer.PINPad takes a cardholder's online PIN on the same keypad and
// screen, for the demo and keypad-only terminals: one '*' per digit, the
// digits in one buffer zeroed once the ISO 9564 format-0 block is built,
// nothing logged. It sees the full PAN only to bind the block to it, and
// shows it masked.
package installer
