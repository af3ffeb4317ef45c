package postgres

import (
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// pos is a row's position in a list ordered by a time column, then id.
type pos struct {
	T  time.Time `json:"t"`
	ID uuid.UUID `json:"id"`
}

// reversed is the opposite order.
func reversed(o query.Order) query.Order {
	if o == query.Oldest {
		return query.Newest
	}
	return query.Oldest
}

// window is how to read one page of a list ordered by a time column, then
// id.
type window struct {
	list  string              // the list and its order, which its cursors are made for
	cur   *paging.Cursor[pos] // nil: the first page
	order query.Order         // the order to read the rows in
	after *pos                // the position the rows follow; nil: from the start
	limit int
}

// openWindow decodes the cursor of p for list name in order. A cursor
// going backwards reads the list in the reverse order from its position.
func openWindow(name string, order query.Order, p paging.Request) (window, error) {
	w := window{list: name + ":" + string(order), order: order, limit: p.Size()}
	cur, err := paging.Decode[pos](w.list, p.Cursor)
	if err != nil || cur == nil {
		return w, err
	}
	w.cur, w.after = cur, &cur.Pos
	if cur.Reverse {
		w.order = reversed(order)
	}
	return w, nil
}
