package ui

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/receipt"
)

func TestLayout(t *testing.T) {
	tests := []struct {
		name         string
		rows, cols   int
		title        string
		body, footer []string
		want         []string
	}{
		{"title centred, footer at the bottom", 5, 16, "安装 INSTALL", []string{"密码 Password:"}, []string{"OK 确认 X 退出"},
			[]string{"  安装 INSTALL", "密码 Password:", "", "", "OK 确认 X 退出"}},
		{"body wraps", 4, 10, "T", []string{"终端已开通 live"}, nil,
			[]string{"    T", "终端已开通", "live", ""}},
		{"body cut with More, footer kept", 4, 10, "T", []string{"1234567890 abcdefghij klm"}, []string{"OK go"},
			[]string{"    T", "1234567890", "abcdefgh..", "OK go"}},
		{"More never splits a wide rune", 3, 9, "", []string{"一二三四五六七八九十"}, nil,
			[]string{"", "一二三四", "五六七.."}},
		{"title too wide is cut", 2, 6, "安装安装", nil, nil, []string{"安装安", ""}},
		{"footer taller than the screen keeps its first rows", 3, 8, "T", []string{"body"}, []string{"a", "b", "c"},
			[]string{"   T", "a", "b"}},
		{"one row shows only the title", 1, 8, "T", []string{"body"}, []string{"f"}, []string{"   T"}},
		{"unusable display is blank, not a crash", 0, 2, "T", []string{"x"}, nil, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Layout(tt.rows, tt.cols, tt.title, tt.body, tt.footer)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			for _, r := range got {
				if w := receipt.Width(r); w > max(tt.cols, 0) {
					t.Errorf("row %q is %d columns wide", r, w)
				}
			}
		})
	}
}

func FuzzLayout(f *testing.F) {
	f.Add(4, 16, "安装 INSTALL", "密码 Password: ****", "OK 确认 X 退出")
	f.Add(2, 4, "", "\x00\t一", "")
	f.Fuzz(func(t *testing.T, rows, cols int, title, body, footer string) {
		if rows > 64 || cols > 256 || rows < -1 || cols < -1 {
			t.Skip()
		}
		got := Layout(rows, cols, title, []string{body}, []string{footer})
		if len(got) != max(rows, 1) {
			t.Fatalf("%d rows for %d", len(got), rows)
		}
		for _, r := range got {
			if receipt.Width(r) > max(cols, 0) {
				t.Fatalf("row %q wider than %d", r, cols)
			}
		}
	})
}

func TestGridDraw(t *testing.T) {
	var buf bytes.Buffer
	g := &Grid{W: &buf, Rows: 3, Cols: 12, Prefix: "lcd| "}
	if err := g.Draw(context.Background(), "签到", []string{"正在连接 host"}); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"lcd| +------------+",
		"lcd| |    签到    |",
		"lcd| |正在连接    |",
		"lcd| |host        |",
		"lcd| +------------+",
	}, "\n") + "\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	buf.Reset()
	if err := g.Draw(ctx, "x", nil); !errors.Is(err, context.Canceled) || buf.Len() != 0 {
		t.Errorf("cancelled Draw = %v, wrote %q", err, buf.String())
	}
	g.W = failWriter{errors.New("disk full")}
	if err := g.Draw(context.Background(), "x", nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Draw on a failing writer = %v", err)
	}
}
