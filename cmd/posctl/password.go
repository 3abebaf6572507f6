package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/posagent/posagent/agent/installer"
)

// hashPassword runs `posctl hash-password`: reads the installer password
// (digits) from stdin, so it stays out of ps and shell history, and prints
// the salted PBKDF2 hash for installer.password_hash.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: posctl hash-password < FILE-WITH-THE-DIGITS")
		return 2
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "posctl: hash-password:", err)
		return 1
	}
	h, err := installer.HashPassword(strings.TrimSpace(line), nil, 0)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}
