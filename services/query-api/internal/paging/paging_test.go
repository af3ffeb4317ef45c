package paging

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
)

// table is a list of distinct ints in ascending order, read as a store
// reads a table: limit+1 rows from a cursor's position in its direction.
type table []int

func (tb table) page(t *testing.T, limit int, cursor string) ([]int, Links) {
	t.Helper()
	cur, err := Decode[int]("ints", cursor)
	if err != nil {
		t.Fatalf("cursor %q: %v", cursor, err)
	}
	var rows []int
	switch {
	case cur == nil:
		rows = slices.Clone(tb)
	case cur.Reverse:
		for i := len(tb) - 1; i >= 0; i-- {
			if tb[i] < cur.Pos {
				rows = append(rows, tb[i])
			}
		}
	default:
		for _, v := range tb {
			if v > cur.Pos {
				rows = append(rows, v)
			}
		}
	}
	rows = rows[:min(len(rows), limit+1)]
	return Cut("ints", rows, limit, cur, func(v int) int { return v })
}

func TestForwardThenBack(t *testing.T) {
	for _, c := range []struct{ rows, limit int }{{25, 10}, {20, 10}, {10, 10}, {9, 10}, {1, 1}, {0, 5}, {7, 1}} {
		var tb table
		for i := range c.rows {
			tb = append(tb, 10*i)
		}
		var pages [][]int
		var links Links
		cursor := ""
		for {
			page, l := tb.page(t, c.limit, cursor)
			if (cursor == "") != (l.Previous == nil) {
				t.Fatalf("%+v: page %d has previous %v", c, len(pages), l.Previous)
			}
			pages, links = append(pages, page), l
			if l.Next == nil {
				break
			}
			cursor = *l.Next
		}
		if got := slices.Concat(pages...); !slices.Equal(got, []int(tb)) && !(len(got) == 0 && len(tb) == 0) {
			t.Fatalf("%+v: forwards %v, want %v", c, got, tb)
		}
		if want := max(1, (c.rows+c.limit-1)/c.limit); len(pages) != want {
			t.Fatalf("%+v: %d pages, want %d", c, len(pages), want)
		}
		// Back from the last page to the first, page by page.
		for i := len(pages) - 2; i >= 0; i-- {
			if links.Previous == nil {
				t.Fatalf("%+v: no previous before page %d", c, i+1)
			}
			page, l := tb.page(t, c.limit, *links.Previous)
			if !slices.Equal(page, pages[i]) || l.Next == nil {
				t.Fatalf("%+v: back to page %d: %v (next %v), want %v", c, i, page, l.Next, pages[i])
			}
			// and forwards again from there
			if again, _ := tb.page(t, c.limit, *l.Next); !slices.Equal(again, pages[i+1]) {
				t.Fatalf("%+v: next of page %d reached backwards: %v, want %v", c, i, again, pages[i+1])
			}
			links = l
		}
		if len(pages) > 1 && links.Previous != nil {
			t.Fatalf("%+v: the first page, reached backwards, has previous %q", c, *links.Previous)
		}
	}
}

func TestBoundaries(t *testing.T) {
	tb := table{0, 10, 20, 30, 40}
	// Forwards past the end (the rows after were removed since): an empty
	// page whose previous is the page before the position, as with DRF.
	_, l := tb.page(t, 2, *encode("ints", 40, false))
	if l.Next != nil || l.Previous == nil {
		t.Fatalf("past the end: %+v", l)
	}
	if page, _ := tb.page(t, 2, *l.Previous); !slices.Equal(page, []int{20, 30}) {
		t.Fatalf("before the end: %v", page)
	}
	// Backwards before the start: an empty page whose next is the first
	// page, without a cursor.
	page, l := tb.page(t, 2, *encode("ints", 0, true))
	if len(page) != 0 || l.Previous != nil || l.Next == nil || *l.Next != "" {
		t.Fatalf("before the start: %v %+v", page, l)
	}
	// Backwards to the start when rows before were removed: a short first
	// page, without previous.
	page, l = tb.page(t, 2, *encode("ints", 10, true))
	if !slices.Equal(page, []int{0}) || l.Previous != nil || l.Next == nil {
		t.Fatalf("short first page: %v %+v", page, l)
	}
}

func TestInvalidCursors(t *testing.T) {
	good := *encode("ints", 42, false)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := slices.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	forge := func(doc string) string { // a right checksum over a wrong document
		return base64.RawURLEncoding.EncodeToString(append(checksum([]byte(doc)), doc...))
	}
	for name, c := range map[string]struct{ cursor, why string }{
		"not base64":         {"zzz!", "malformed"},
		"too short":          {"AAAA", "malformed"},
		"a digit changed":    {flip(len(raw) - 4), "altered"},
		"checksum changed":   {flip(0), "altered"},
		"cut short":          {good[:len(good)-3], "altered"},
		"another list":       {*encode("other", 42, false), "another list"},
		"not JSON":           {forge("{"), "malformed"},
		"unknown field":      {forge(`{"l":"ints","p":1,"x":1}`), "malformed"},
		"position of a type": {forge(`{"l":"ints","p":"1"}`), "malformed position"},
	} {
		_, err := Decode[int]("ints", c.cursor)
		if !errors.Is(err, ErrInvalidCursor) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v, want %q", name, err, c.why)
		}
	}
	if cur, err := Decode[int]("ints", good); err != nil || cur.Pos != 42 || cur.Reverse {
		t.Fatalf("good cursor: %+v %v", cur, err)
	}
	if cur, err := Decode[int]("ints", ""); err != nil || cur != nil {
		t.Fatalf("no cursor: %+v %v", cur, err)
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[int]int{0: DefaultLimit, -1: DefaultLimit, 1: 1, MaxLimit: MaxLimit, MaxLimit + 1: MaxLimit} {
		if got := (Request{Limit: in}).Size(); got != want {
			t.Errorf("Size of %d: %d, want %d", in, got, want)
		}
	}
}
