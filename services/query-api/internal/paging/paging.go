// Package paging is the keyset pagination of every query-api list, after
// Django REST framework's CursorPagination: a page has the cursor of the
// page after it and of the page before it, and a cursor holds a position
// in the list and the direction to read from it. Positions are the sort
// keys of a row (e.g. its timestamp and id), so a page never skips or
// repeats a row when rows are added or removed elsewhere in the list.
//
// A cursor is opaque to clients: base64url of a checksum and a small JSON
// document naming the list it was made for. The checksum catches cursors
// altered or cut short; it is no secret, and needs none: a cursor only
// says where a page starts, never what a caller may see.
package paging

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ErrInvalidCursor is a cursor this API did not make for the list it is
// used with: malformed, altered, or made for another list or ordering.
var ErrInvalidCursor = errors.New("invalid cursor")

// Request asks for one page of a list.
type Request struct {
	Limit  int    // 1..MaxLimit; 0 for DefaultLimit
	Cursor string // a cursor from Links; "" for the first page
}

// Size is the number of rows the page holds at most.
func (r Request) Size() int {
	if r.Limit <= 0 {
		return DefaultLimit
	}
	return min(r.Limit, MaxLimit)
}

// Cursor is a decoded cursor: the page starts after Pos in the list's
// order, or, when Reverse, ends before Pos (the rows before it are read
// backwards, as DRF does).
type Cursor[P any] struct {
	Pos     P
	Reverse bool
}

// Links are the cursors of the pages next to a page: nil when there is no
// such page, "" when it is the first page (no cursor at all).
type Links struct {
	Next, Previous *string
}

// envelope is a cursor's JSON document.
type envelope struct {
	List    string          `json:"l"`
	Pos     json.RawMessage `json:"p"`
	Reverse bool            `json:"r,omitempty"`
}

const sumSize = 6 // bytes of SHA-256 kept as the checksum

func checksum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:sumSize]
}

// encode makes the cursor of pos for list.
func encode[P any](list string, pos P, reverse bool) *string {
	p, _ := json.Marshal(pos)                                              // positions are plain values: cannot fail
	doc, _ := json.Marshal(envelope{List: list, Pos: p, Reverse: reverse}) // plain fields: cannot fail
	s := base64.RawURLEncoding.EncodeToString(append(checksum(doc), doc...))
	return &s
}

// Decode reads cursor s of list; "" is the first page (nil). Any other
// cursor than one Cut made for list is ErrInvalidCursor, wrapped with what
// is wrong.
func Decode[P any](list, s string) (*Cursor[P], error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) <= sumSize {
		return nil, fmt.Errorf("%w: it is not a cursor this API made (malformed)", ErrInvalidCursor)
	}
	doc := b[sumSize:]
	if !bytes.Equal(b[:sumSize], checksum(doc)) {
		return nil, fmt.Errorf("%w: it was altered or cut short", ErrInvalidCursor)
	}
	var env envelope
	if err := strict(doc, &env); err != nil {
		return nil, fmt.Errorf("%w: it is not a cursor this API made (malformed)", ErrInvalidCursor)
	}
	if env.List != list {
		return nil, fmt.Errorf("%w: it was made for another list or ordering", ErrInvalidCursor)
	}
	c := Cursor[P]{Reverse: env.Reverse}
	if err := strict(env.Pos, &c.Pos); err != nil {
		return nil, fmt.Errorf("%w: it is not a cursor this API made (malformed position)", ErrInvalidCursor)
	}
	return &c, nil
}

// strict decodes one JSON value into dst, refusing unknown fields.
func strict(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// Cut makes the page of list that cur asks for from rows, the result of
// reading up to limit+1 rows from cur's position in the direction it says
// (the list's order, or its reverse when cur.Reverse; from the start when
// cur is nil). It returns the page's rows in the list's order (reordering
// rows in place) and the cursors of the pages around it; pos gives a row's
// position. As with DRF, a page read forwards from a cursor has a previous
// page and one read backwards has a next page, without asking the
// database.
func Cut[R, P any](list string, rows []R, limit int, cur *Cursor[P], pos func(R) P) ([]R, Links) {
	more := len(rows) > limit
	rows = rows[:min(len(rows), limit)]
	reverse := cur != nil && cur.Reverse
	if reverse {
		slices.Reverse(rows)
	}
	var l Links
	if len(rows) == 0 {
		switch {
		case cur == nil:
		case reverse: // nothing before the position: what follows is the first page
			first := ""
			l.Next = &first
		default: // nothing after the position: what precedes ends there
			l.Previous = encode(list, cur.Pos, true)
		}
		return rows, l
	}
	first, last := pos(rows[0]), pos(rows[len(rows)-1])
	if more || reverse {
		l.Next = encode(list, last, false)
	}
	if (more && reverse) || (cur != nil && !reverse) {
		l.Previous = encode(list, first, true)
	}
	return rows, l
}
