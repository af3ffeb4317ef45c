package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/schema"
)

// ErrBreaksEvents: the new version rejects some of the type's recent
// stored events, so events like them would become errors once it applies.
var ErrBreaksEvents = errors.New("the schema rejects stored events of its type")

// Guard is how Add protects a type's events from a new version.
type Guard struct {
	// Check is how many of the type's most recent stored events (by
	// timestamp) the new version is validated against first; 0 checks
	// none.
	Check int
	// DryRun only checks: nothing is stored.
	DryRun bool
	// Force stores the version even when some checked events fail it.
	Force bool
}

// MaxSamples bounds the failures an Impact lists.
const MaxSamples = 5

// Impact is what a new schema version would do to its type's recent
// stored events.
type Impact struct {
	Category string `json:"category" example:"page interaction"`
	Name     string `json:"name" example:"pageview"`
	// Checked is how many stored events were validated: the type's most
	// recent by timestamp, at most the configured number
	// (EYE_SCHEMA_CHECK_EVENTS).
	Checked int `json:"checked" example:"1000"`
	// Failing is how many of them the version rejects.
	Failing int `json:"failing" example:"3"`
	// Samples are the first failures (at most MaxSamples), newest first.
	Samples []Failure `json:"samples"`
}

// Failure is a stored event the version rejects, with its first violation.
type Failure struct {
	EventID uuid.UUID `json:"event_id"`
	// Pointer is the JSON pointer of the failing value in the event.
	Pointer string `json:"pointer" example:"/data/path"`
	Message string `json:"message" example:"missing property 'path'"`
}

// impact validates the type's n most recent stored events against sc.
func (s *Service) impact(ctx context.Context, sc *schema.Schema, n int) (Impact, error) {
	imp := Impact{Category: sc.Category, Name: sc.Name, Samples: []Failure{}}
	events, err := s.store.RecentEvents(ctx, sc.Category, sc.Name, n)
	if err != nil {
		return imp, fmt.Errorf("check stored events: %w", err)
	}
	for _, e := range events {
		imp.Checked++
		reasons := sc.Validate(e.Data)
		if len(reasons) == 0 {
			continue
		}
		imp.Failing++
		if len(imp.Samples) < MaxSamples {
			imp.Samples = append(imp.Samples, Failure{EventID: e.ID, Pointer: reasons[0].Field, Message: reasons[0].Message})
		}
	}
	return imp, nil
}
