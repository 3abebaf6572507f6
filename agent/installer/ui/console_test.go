package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
)

// session is a short install dialogue in Chinese and English, driven by a
// script with a stray key in it.
func session(t *testing.T, c *Console) {
	t.Helper()
	keys, err := ParseScript("2 # stray press\nENTER")
	if err != nil {
		t.Fatal(err)
	}
	term := &Terminal{Display: c, Keypad: keys}
	ctx := context.Background()
	if err := term.Show(ctx, provisioning.Screen{
		Title: "签到 SIGN ON",
		Lines: []string{"正在连接收单主机,请稍候 Connecting to the acquirer host, please wait", ""},
	}); err != nil {
		t.Fatal(err)
	}
	id, err := term.Ask(ctx, provisioning.Screen{
		Title: "确认商户信息 CONFIRM MERCHANT",
		Lines: []string{
			"商户名称: 上海浦东新区张江高科技园区便利店",
			"商户编号: 898310048160001",
			"终端编号: 10000001",
		},
	}, provisioning.Option{ID: "confirm", Key: "ENTER", Label: "确认 Confirm"},
		provisioning.Option{ID: "abort", Key: "CANCEL", Label: "取消 Cancel"})
	if err != nil || id != "confirm" {
		t.Fatalf("Ask = %q, %v", id, err)
	}
	// A title too long for the border gets rows of its own.
	if err := term.Show(ctx, provisioning.Screen{
		Title: "测试交易完成 TEST SALE APPROVED, PLEASE TEAR OFF THE SLIP",
		Lines: []string{"参考号 RRN 260101123456"},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		cols int
	}{
		{"console_32.golden", 0}, // default width
		{"console_20.golden", 20},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			c := &Console{W: &buf, Cols: tc.cols, Prefix: "screen| "}
			session(t, c)
			out := buf.String()
			golden.Check(t, filepath.Join("testdata", tc.file), out)

			cols := tc.cols
			if cols <= 0 {
				cols = DefaultCols
			}
			for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !strings.HasPrefix(line, "screen| ") {
					t.Errorf("line %d lacks the prefix: %q", i, line)
				}
				// Every row of the box is exactly the frame wide: the right
				// border lines up, which is what the width count is for.
				if w := receipt.Width(strings.TrimPrefix(line, "screen| ")); w != cols+4 {
					t.Errorf("line %d is %d wide, want %d: %q", i, w, cols+4, line)
				}
			}
		})
	}
}

func TestConsoleErrors(t *testing.T) {
	var buf bytes.Buffer
	c := &Console{W: &buf}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Draw(ctx, "t", nil); !errors.Is(err, context.Canceled) || buf.Len() != 0 {
		t.Errorf("Draw with done ctx: %v, wrote %q", err, buf.String())
	}
	broken := errors.New("pipe closed")
	c = &Console{W: failWriter{broken}}
	if err := c.Draw(context.Background(), "t", nil); !errors.Is(err, broken) {
		t.Errorf("Draw to a broken writer: %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// TestConcurrentDraws checks that boxes drawn from many goroutines come out
// whole; run it with -race.
func TestConcurrentDraws(t *testing.T) {
	var buf bytes.Buffer // not safe by itself: the Console's mutex must guard it
	c := &Console{W: &buf, Cols: 24}
	keys := NewScript()
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			title := fmt.Sprintf("屏幕 %02d", i)
			if err := c.Draw(context.Background(), title, []string{"第一行 line one", "第二行 line two"}); err != nil {
				t.Error(err)
			}
			_, _ = keys.Key(context.Background())
			_ = keys.Keys()
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4*n {
		t.Fatalf("%d lines, want %d", len(lines), 4*n)
	}
	seen := map[string]bool{}
	for i := 0; i < len(lines); i += 4 {
		top, l1, l2, bottom := lines[i], lines[i+1], lines[i+2], lines[i+3]
		if !strings.HasPrefix(top, "+- 屏幕 ") || !strings.Contains(l1, "第一行") || !strings.Contains(l2, "第二行") || !strings.HasPrefix(bottom, "+---") {
			t.Fatalf("box %d is torn:\n%s", i/4, strings.Join(lines[i:i+4], "\n"))
		}
		seen[top] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct boxes, want %d", len(seen), n)
	}
}

// A scripted install dialogue on the console, as the demo runs it.
func ExampleTerminal() {
	keys, _ := ParseScript("CANCEL, 1 # retry sign-on")
	term := &Terminal{
		Display: &Console{W: os.Stdout, Cols: 24},
		Keypad:  keys,
	}
	id, err := term.Ask(context.Background(), provisioning.Screen{
		Title: "签到失败",
		Lines: []string{"主机无应答 No answer from host"},
	}, provisioning.Option{ID: "retry", Key: "1", Label: "重试 Retry"},
		provisioning.Option{ID: "abort", Key: "F4", Label: "退出 Abort"})
	fmt.Println(id, err)
	// Output:
	// +- 签到失败 ---------------+
	// | 主机无应答 No answer     |
	// | from host                |
	// | [1] 重试 Retry           |
	// | [F4] 退出 Abort          |
	// +--------------------------+
	// retry <nil>
}
