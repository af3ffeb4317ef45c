package query

import (
	"errors"

	"github.com/the-eye/eye/services/query-api/internal/apitime"
)

// Dimensions an error summary can group by.
const (
	ByReason        = "reason"
	ByCategory      = "category"
	ByName          = "name"
	BySchemaVersion = "schema_version"
	ByStage         = "stage"
)

// SummaryDimensions lists the dimensions an error summary can group by.
var SummaryDimensions = []string{ByReason, ByCategory, ByName, BySchemaVersion, ByStage}

// MaxSummaryGroups bounds the groups of one summary: the most frequent are
// kept.
const MaxSummaryGroups = 1000

// ErrBadGrouping is a summary asked to group by an unknown dimension.
var ErrBadGrouping = errors.New("unknown grouping")

// ErrorGroup is one group of an error summary: the values of the grouped
// dimensions (null for the others, and for a grouped value a record does
// not have), how many records it has, and when the first and last of them
// were detected.
type ErrorGroup struct {
	// Reason is a reason code; a record with several reasons counts in the
	// group of each.
	Reason *string `json:"reason" extensions:"x-nullable" example:"empty_data"`
	// Category, Name and SchemaVersion are null in a group of records that
	// have none (e.g. payloads that are not JSON objects).
	Category      *string `json:"category" extensions:"x-nullable" example:"page interaction"`
	Name          *string `json:"name" extensions:"x-nullable" example:"pageview"`
	SchemaVersion *int    `json:"schema_version" extensions:"x-nullable" example:"2"`
	Stage         *string `json:"stage" extensions:"x-nullable" example:"validator"`
	Count         int64   `json:"count" example:"42"`
	// FirstSeen and LastSeen are the earliest and latest detection times.
	FirstSeen apitime.Time `json:"first_seen"`
	LastSeen  apitime.Time `json:"last_seen"`
}

// ErrorSummary is the error records matching a filter, grouped.
type ErrorSummary struct {
	// By lists the dimensions grouped by, in the order asked.
	By []string `json:"by" example:"reason,category"`
	// Groups are the groups, most records first (then most recent).
	Groups []ErrorGroup `json:"groups"`
	// Truncated: there were more than MaxSummaryGroups groups; the most
	// frequent are shown.
	Truncated bool `json:"truncated"`
}
