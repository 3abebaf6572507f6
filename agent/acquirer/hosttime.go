package acquirer

import (
	"time"

	"github.com/moov-io/iso8583"
)

// hostTime reads fields 13 (MMDD) and 12 (hhmmss) in the host's zone and
// puts them in the year nearest the terminal clock (the host sends no year).
func (c *Client) hostTime(m *iso8583.Message) time.Time {
	d, hms := Get(m, 13), Get(m, 12)
	if !isDigits(d, 4) || !isDigits(hms, 6) {
		return time.Time{}
	}
	now := c.cfg.Now().In(c.cfg.HostLocation)
	atoi := func(s string) int {
		n := 0
		for _, ch := range s {
			n = n*10 + int(ch-'0')
		}
		return n
	}
	t := time.Date(now.Year(), time.Month(atoi(d[:2])), atoi(d[2:]), atoi(hms[:2]), atoi(hms[2:4]), atoi(hms[4:]), 0, c.cfg.HostLocation)
	switch {
	case t.Sub(now) > 183*24*time.Hour:
		t = t.AddDate(-1, 0, 0)
	case now.Sub(t) > 183*24*time.Hour:
		t = t.AddDate(1, 0, 0)
	}
	return t
}
